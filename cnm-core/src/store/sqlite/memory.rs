//! SQLite's own allocations through Rust's global allocator. SQLite calls the C library's
//! `malloc` unless told otherwise; in a plugin, whose global allocator is
//! [`crate::alloc::OneShot`], that left SQLite's page cache and parser on musl's allocator, which
//! maps and unmaps memory for them on every call. Each block carries its size in a header, as
//! SQLite's `xSize` needs it.

use std::alloc::Layout;
use std::ffi::{c_int, c_void};
use std::sync::Once;

use rusqlite::ffi;

/// The header before each block: its size, and 16 bytes so that blocks stay 16-byte aligned, as
/// `malloc`'s are (SQLite needs 8).
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Some(l) = usize::try_from(n).ok().and_then(layout) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a non-zero size (the header at least); the block is fresh or null.
    unsafe { with_header(l, std::alloc::alloc(l)).cast() }
}

/// Writes the header of a block of `l` at `base` (from the allocator; null if it failed) and
/// returns the address SQLite sees.
///
/// # Safety
/// `base` is null or a live block of layout `l`.
unsafe fn with_header(l: Layout, base: *mut u8) -> *mut u8 {
    if base.is_null() {
        return base;
    }
    // SAFETY: the block is at least HEADER long and 16-byte aligned.
    unsafe {
        base.cast::<usize>().write(l.size() - HEADER);
        base.add(HEADER)
    }
}

/// The block's base and layout, from the address SQLite holds.
///
/// # Safety
/// `p` came from [`x_malloc`] or [`x_realloc`] and is live.
unsafe fn block(p: *mut c_void) -> (*mut u8, Layout) {
    // SAFETY: the header is HEADER bytes before `p`, in the same block.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        let size = base.cast::<usize>().read();
        (
            base,
            Layout::from_size_align_unchecked(size + HEADER, HEADER),
        )
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what it got from x_malloc/x_realloc.
    unsafe {
        let (base, l) = block(p);
        std::alloc::dealloc(base, l);
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    let Some(new) = usize::try_from(n).ok().and_then(layout) else {
        return std::ptr::null_mut();
    };
    // SAFETY: SQLite reallocates only what it got from x_malloc/x_realloc, and the new layout
    // has the old one's alignment.
    unsafe {
        let (base, old) = block(p);
        with_header(new, std::alloc::realloc(base, old, new.size())).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only about what it got from x_malloc/x_realloc.
    let (_, l) = unsafe { block(p) };
    c_int::try_from(l.size() - HEADER).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.checked_add(7).map_or(n, |m| m & !7)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Makes SQLite allocate through Rust's global allocator; a no-op once SQLite is initialized
/// (any connection opened), when SQLite refuses. Call it before the first connection opens.
pub fn allocate_through_rust() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies the struct; the functions live as long as the process.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!("SQLite keeps its allocator (sqlite3_config: {rc})");
        }
    });
}
