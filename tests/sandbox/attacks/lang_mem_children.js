// four child processes each keep 64 MiB of buffers (256 MiB and five runtimes against a 64 MiB
// limit): the jail's cgroup holds what no heap limit of one process sees. The verdict is the memory limit, or
// the time limit where the cgroup's reclaim keeps evicting and re-reading the runtimes' file-backed pages
// instead of killing (seen with node 20 on a 2-vCPU VM: 10 s of CPU at the limit); a limit not held lets the
// parent finish after 4 s
const { fork } = require('child_process');
if (process.argv[2] === 'child') {
  const keep = [];
  for (let i = 0; i < 8; i++) keep.push(Buffer.alloc(8 << 20, 1));
  setTimeout(() => keep.length, 10000);
} else {
  for (let i = 0; i < 4; i++) fork(__filename, ['child']).on('error', () => {});
  setTimeout(() => { console.log('the parent outlived its children'); process.exit(0); }, 4000);
}
