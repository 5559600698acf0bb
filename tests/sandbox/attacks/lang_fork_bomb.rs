// every process starts two more, without end: the process limit and the time limit hold it, and
// none survives the run
use std::process::{Command, Stdio};
fn main() {
    loop {
        for _ in 0..2 {
            let _ = Command::new("/proc/self/exe").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
