// reads the host's secret (its directory on stdin) and writes outside /work: everything but
// /work is read-only, and the host's files are not there
fn main() {
    let mut dir = String::new();
    std::io::stdin().read_line(&mut dir).unwrap();
    let dir = dir.trim();
    match std::fs::read_to_string(format!("{}/secret.txt", dir)) {
        Ok(s) => println!("read: {}", s),
        Err(e) => println!("no secret: {}", e),
    }
    for p in ["/etc/written_by_sandbox".to_string(), "/usr/written_by_sandbox".to_string(), "/written_by_sandbox".to_string(),
              format!("{}/written_by_sandbox", dir), "/proc/written_by_sandbox".to_string()] {
        match std::fs::write(&p, "x") {
            Ok(_) => println!("ESCAPED: wrote {}", p),
            Err(e) => println!("cannot write {}: {}", p, e),
        }
    }
    std::fs::write("/work/ok.txt", "x").unwrap();
    std::fs::write("/tmp/written_by_sandbox", "x").unwrap();
    println!("done");
}
