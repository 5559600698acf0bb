// fills the JavaScript heap far past the 64 MiB limit: MemoryLimitExceeded
const keep = [];
for (let i = 0; i < 256; i++) keep.push(new Array(1 << 20).fill(i + 0.5));  // 8 MiB of doubles each
console.log('ESCAPED: kept', keep.length * 8, 'MiB');
