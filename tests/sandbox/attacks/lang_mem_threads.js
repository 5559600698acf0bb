// six worker threads each keep 64 MiB of buffers (384 MiB against a 64 MiB limit; a worker holds
// several descriptors of the 64 allowed): the cgroup holds what no heap limit of one thread sees
const { Worker, isMainThread, parentPort } = require('worker_threads');
if (isMainThread) {
  let kept = 0;
  for (let i = 0; i < 6; i++)
    new Worker(__filename).on('message', () => {
      if (++kept === 6) { console.log('ESCAPED: all threads kept their memory'); process.exit(0); }
    }).on('error', (e) => { console.error('a thread failed:', e.message); process.exit(1); });
} else {
  const keep = [];
  for (let i = 0; i < 8; i++) keep.push(Buffer.alloc(8 << 20, 1));
  parentPort.postMessage(keep.length);
  setTimeout(() => keep.length, 10000);
}
