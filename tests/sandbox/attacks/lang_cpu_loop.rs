// burns CPU forever: the time limit must stop it
fn main() {
    let mut x: u64 = 0;
    loop {
        let y = (x * 31 + 7) % 1000003;
        unsafe { std::ptr::write_volatile(&mut x, y) };
    }
}
