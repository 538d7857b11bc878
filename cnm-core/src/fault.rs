//! Failure injection for crash tests: with `CNM_FAULT_KILL_AFTER=k` in its environment, a plugin
//! process kills itself with SIGKILL right after its k-th side effect (a store commit, a link
//! created or deleted, an nft batch, a delegated call). Crash tests step k through every side
//! effect of ADD and DEL and check that what a runtime does next (DEL, GC) leaves nothing.
//!
//! Compiled into debug builds only: a release build has no such code, whatever its environment.

/// Marks a side effect that has just happened.
#[cfg(debug_assertions)]
pub fn side_effect(what: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static DONE: AtomicU32 = AtomicU32::new(0);
    let Some(k) = std::env::var("CNM_FAULT_KILL_AFTER")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let n = DONE.fetch_add(1, Ordering::SeqCst) + 1;
    if n == k {
        tracing::warn!("fault injection: killing this process after side effect {n} ({what})");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Marks a side effect that has just happened (no-op in release builds).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn side_effect(_what: &str) {}
