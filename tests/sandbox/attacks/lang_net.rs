// tries the host's listening port (stdin) on loopback and an outside address: the jail's network
// namespace has only its own loopback
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
fn main() {
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).unwrap();
    let port: u16 = s.trim().parse().unwrap();
    for addr in [format!("127.0.0.1:{}", port), "1.1.1.1:53".to_string()] {
        let a: SocketAddr = addr.parse().unwrap();
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(_) => println!("ESCAPED: connected to {}", addr),
            Err(e) => println!("{} refused: {}", addr, e),
        }
    }
    println!("done");
}
