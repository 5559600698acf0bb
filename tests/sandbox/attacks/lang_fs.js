// reads the host's secret (its directory on stdin) and writes outside /work: everything but
// /work is read-only, and the host's files are not there
const fs = require('fs');
const dir = fs.readFileSync(0, 'utf8').trim();
try { console.log('read:', fs.readFileSync(dir + '/secret.txt', 'utf8')); } catch (e) { console.log('no secret:', e.code); }
for (const p of ['/etc/written_by_sandbox', '/usr/written_by_sandbox', '/written_by_sandbox', dir + '/written_by_sandbox', '/proc/written_by_sandbox']) {
  try { fs.writeFileSync(p, 'x'); console.log('ESCAPED: wrote', p); } catch (e) { console.log('cannot write', p, e.code); }
}
fs.writeFileSync('/work/ok.txt', 'x');
fs.writeFileSync('/tmp/written_by_sandbox', 'x');  // /tmp is /work
console.log('done');
