//! `store::allocate_through_rust`: SQLite's allocations reach the global allocator. Its own test
//! binary, so that no other test has initialized SQLite first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use cnm_core::store::{allocate_through_rust, SqliteStore, Store};

/// Counts the live blocks of SQLite's alignment (16; little else in Rust asks for it) that the
/// test's own thread takes and gives back (the harness's threads allocate meanwhile too).
struct Counting;

static ALIGNED_16: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn watched(l: Layout) -> bool {
    l.align() == 16 && WATCHED.with(std::cell::Cell::get)
}

// SAFETY: System does the work; the counter only watches.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if watched(l) {
            ALIGNED_16.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if watched(l) {
            ALIGNED_16.fetch_sub(1, Ordering::Relaxed);
        }
        // SAFETY: passed on.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn sqlite_allocates_through_the_global_allocator_and_gives_it_all_back() {
    allocate_through_rust();
    let dir = tempfile::tempdir().unwrap();
    WATCHED.with(|w| w.set(true));
    let before = ALIGNED_16.load(Ordering::Relaxed);
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let during = ALIGNED_16.load(Ordering::Relaxed);
        assert!(
            during > before + 10,
            "SQLite's blocks are not the global allocator's: {before} -> {during} live"
        );
        // Reads and writes work on the routed memory (reallocations included).
        assert!(store.endpoints(None).unwrap().is_empty());
        assert!(store.networks().unwrap().is_empty());
    }
    // SAFETY: no connection is open any more.
    unsafe { rusqlite::ffi::sqlite3_shutdown() };
    assert_eq!(
        ALIGNED_16.load(Ordering::Relaxed),
        before,
        "every block SQLite took went back"
    );
}
