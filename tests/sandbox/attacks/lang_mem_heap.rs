// allocates and touches 2 GiB past the 64 MiB limit: MemoryLimitExceeded
fn main() {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    for i in 0..128 {
        keep.push(vec![i as u8 | 1; 16 << 20]);
    }
    println!("ESCAPED: kept {} MiB", keep.len() * 16);
}
