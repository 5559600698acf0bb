// sixteen threads each keep 32 MiB (512 MiB against a 64 MiB limit)
fn main() {
    let hs: Vec<_> = (0..16).map(|i| std::thread::spawn(move || { let v = vec![i as u8 | 1; 32 << 20]; std::thread::sleep(std::time::Duration::from_secs(2)); v.len() })).collect();
    let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("ESCAPED: all threads kept their memory {}", total);
}
