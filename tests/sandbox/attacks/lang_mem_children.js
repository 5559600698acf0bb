// four child processes each keep 64 MiB of buffers (256 MiB and five runtimes against a 64 MiB
// limit): the jail's cgroup holds what no heap limit of one process sees
const { fork } = require('child_process');
if (process.argv[2] === 'child') {
  const keep = [];
  for (let i = 0; i < 8; i++) keep.push(Buffer.alloc(8 << 20, 1));
  setTimeout(() => keep.length, 10000);
} else {
  for (let i = 0; i < 4; i++) fork(__filename, ['child']).on('error', () => {});
  setTimeout(() => { console.log('the parent outlived its children'); process.exit(0); }, 4000);
}
