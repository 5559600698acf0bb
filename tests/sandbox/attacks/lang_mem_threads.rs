// sixteen threads each keep 32 MiB (512 MiB against a 64 MiB limit); a thread that cannot even start (its
// stack no longer fits the memory left) has met the same limit, and says so as an allocation failure
use std::alloc::{handle_alloc_error, Layout};
fn main() {
    let hs: Vec<_> = (0..16)
        .map(|i| {
            std::thread::Builder::new()
                .spawn(move || { let v = vec![i as u8 | 1; 32 << 20]; std::thread::sleep(std::time::Duration::from_secs(2)); v.len() })
                .unwrap_or_else(|_| handle_alloc_error(Layout::from_size_align(32 << 20, 1).unwrap()))
        })
        .collect();
    let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("ESCAPED: all threads kept their memory {}", total);
}
