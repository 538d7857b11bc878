//! Ctrl-C without dying half-way: SIGINT, SIGTERM and SIGHUP are blocked in the calling thread
//! (and so in every thread it starts afterwards), and one thread takes them with `sigwait` and
//! raises a flag. The demo looks at the flag between steps and during every wait, and returns
//! an error when it is up, so that dropping the throwaway namespaces removes everything. A
//! second Ctrl-C during the clean-up changes nothing: the clean-up finishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

/// Blocks the signals and starts the thread that waits for them; returns the flag it raises.
///
/// Must be called on the main thread before any other thread is started: a thread that was
/// already running would keep the signals unblocked, and the kernel could end the process
/// through it.
pub fn watch() -> std::io::Result<Arc<AtomicBool>> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()?;
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if set.wait().is_ok() {
                raised.store(true, Ordering::SeqCst);
            }
        })?;
    Ok(flag)
}
