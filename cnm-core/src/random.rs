//! Random bytes from the kernel (MAC addresses): no generator to seed or carry.

/// `N` random bytes from `getrandom(2)`, which for a request this small never returns short once
/// the kernel's pool is ready (it waits until then); anything else is a broken kernel.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SAFETY: getrandom writes at most `out.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(out.as_mut_ptr().cast(), out.len(), 0) };
    assert_eq!(
        n,
        N as isize,
        "getrandom failed: {}",
        std::io::Error::last_os_error()
    );
    out
}
