// tries the host's listening port (stdin) on loopback and an outside address: the jail's network
// namespace has only its own loopback
const net = require('net');
const port = Number(require('fs').readFileSync(0, 'utf8').trim());
let left = 2;
function attempt(host, p) {
  const s = net.connect({ host, port: p, timeout: 2000 });
  s.on('connect', () => { console.log('ESCAPED: connected to', host, p); s.destroy(); });
  s.on('error', (e) => { console.log(host, 'refused:', e.code); if (--left === 0) console.log('done'); });
  s.on('timeout', () => { console.log(host, 'timed out'); s.destroy(); if (--left === 0) console.log('done'); });
}
attempt('127.0.0.1', port);
attempt('1.1.1.1', 53);
