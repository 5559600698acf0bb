// twelve child processes each keep 48 MiB (576 MiB against a 64 MiB limit): each is under the
// limit alone, the jail is not
use std::process::Command;
fn main() {
    if std::env::args().count() > 1 {
        let v = vec![1u8; 48 << 20];
        std::thread::sleep(std::time::Duration::from_secs(10));
        println!("{}", v.len());
        return;
    }
    for _ in 0..12 {
        let _ = Command::new("/proc/self/exe").arg("child").spawn();
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    println!("the parent outlived its children");
}
