//! The plugins' memory allocator. A plugin call is a process that lives for milliseconds and
//! allocates a few megabytes at most (a DEL of 1,000 published ports: 38,000 allocations, 4.6 MB
//! in all), so [`OneShot`] hands memory out of one reserved region by bumping an offset and never
//! reuses it. The system allocator of the shipped, musl-linked plugins gives each emptied group
//! back to the kernel at once: that DEL made 360 `mmap`/`munmap` pairs and page-faulted the same
//! memory in again and again. Beyond the region, and for alignments above a page, the system
//! allocator takes over. Long-lived processes (the `cnm` command, library users) keep theirs.
//!
//! ```text
//! #[global_allocator]
//! static ALLOC: cnm_core::alloc::OneShot = cnm_core::alloc::OneShot::new();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Address space reserved for the region; only pages that are used are ever backed by memory.
const REGION: usize = 256 << 20;
const PAGE: usize = 4096;

/// A bump allocator over one lazily mapped region (see the module's documentation).
#[derive(Debug)]
pub struct OneShot {
    /// The region's first address, 0 if it could not be mapped.
    base: OnceLock<usize>,
    /// The offset of the first free byte.
    next: AtomicUsize,
}

impl OneShot {
    pub const fn new() -> Self {
        OneShot {
            base: OnceLock::new(),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        *self.base.get_or_init(|| {
            // SAFETY: a fresh private anonymous mapping, aliasing nothing.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    REGION,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                0
            } else {
                p as usize
            }
        })
    }

    /// The offset of `ptr` in the region, if it is in it.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let base = *self.base.get()?;
        let off = (ptr as usize).wrapping_sub(base);
        (base != 0 && off < REGION).then_some(off)
    }

    /// Takes `size` bytes aligned to `align` (at most a page) from the region.
    fn bump(&self, size: usize, align: usize) -> Option<*mut u8> {
        let base = self.base();
        if base == 0 || align > PAGE {
            return None;
        }
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = cur.checked_add(align - 1)? & !(align - 1);
            let end = start.checked_add(size).filter(|&e| e <= REGION)?;
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

impl Default for OneShot {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is either a range of the region that no other live block
// overlaps (the offset only moves past it, or back over it once it is freed while last) or a
// block of `System`, which is also given back to `System`.
unsafe impl GlobalAlloc for OneShot {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout.size(), layout.align()) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset_of(ptr) {
            // The newest block gives its bytes back (a temporary buffer); others stay used.
            Some(off) => {
                let _ = self.next.compare_exchange(
                    off + layout.size(),
                    off,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: not in the region, so `System` allocated it with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset_of(ptr) else {
            // SAFETY: `System` allocated it with this layout; the caller's new size.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The newest block grows or shrinks where it is (a growing Vec or String).
        if let Some(end) = off.checked_add(new_size).filter(|&e| e <= REGION) {
            if self
                .next
                .compare_exchange(
                    off + layout.size(),
                    end,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return ptr;
            }
        }
        // SAFETY: the caller guarantees that new_size with this alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated here with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_apart_and_hold_their_bytes() {
        let a = OneShot::new();
        let layouts = [(1, 1), (24, 8), (3, 2), (100, 64), (4096, 4096), (7, 1)];
        let mut blocks = Vec::new();
        for (i, &(size, align)) in layouts.iter().enumerate() {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero size; written within the block.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "{l:?}");
            // SAFETY: within the block just allocated.
            unsafe { std::ptr::write_bytes(p, i as u8, size) };
            blocks.push((p, l, i as u8));
        }
        for &(p, l, fill) in &blocks {
            // SAFETY: each block is live and `l.size()` long.
            let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
            assert!(bytes.iter().all(|&b| b == fill), "{l:?} was overwritten");
        }
        for (p, l, _) in blocks {
            // SAFETY: allocated above with `l`.
            unsafe { a.dealloc(p, l) };
        }
    }

    #[test]
    fn the_newest_block_grows_in_place_and_an_older_one_moves_with_its_bytes() {
        let a = OneShot::new();
        let l = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: valid layouts; every access stays within the live block.
        unsafe {
            let old = a.alloc(l);
            std::ptr::write_bytes(old, 7, 16);
            let grown = a.realloc(old, l, 4000);
            assert_eq!(grown, old, "the newest block grows where it is");
            let newer = a.alloc(l);
            let l4000 = Layout::from_size_align(4000, 8).unwrap();
            let moved = a.realloc(grown, l4000, 9000);
            assert_ne!(moved, grown, "an older block moves");
            let bytes = std::slice::from_raw_parts(moved, 16);
            assert!(bytes.iter().all(|&b| b == 7), "its bytes came along");
            a.dealloc(newer, l);
            a.dealloc(moved, Layout::from_size_align(9000, 8).unwrap());
        }
    }

    #[test]
    fn above_a_page_of_alignment_or_the_region_the_system_allocates() {
        let a = OneShot::new();
        for l in [
            Layout::from_size_align(64, 2 * PAGE).unwrap(),
            Layout::from_size_align(REGION + 1, 8).unwrap(),
        ] {
            // SAFETY: valid layouts, freed with the same.
            unsafe {
                let p = a.alloc(l);
                assert!(!p.is_null());
                assert!(a.offset_of(p).is_none(), "{l:?} is not in the region");
                a.dealloc(p, l);
            }
        }
    }
}
