//! The CNI protocol (spec 0.3.0 to 1.1.0): the environment, the configuration, results and errors
//! per version, delegation to other plugins, and the dispatcher that maps a call onto a [`Plugin`].

pub mod config;
pub mod delegate;
pub mod dispatch;
pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use dispatch::{dispatch, Attach, Call, Detach, Plugin, Reply};
pub use error::{CniError, ErrorCode};
pub use result::CniResult;
pub use version::SpecVersion;

/// The whole of a plugin binary's `main`: read the process environment and stdin, run the
/// command, print the result or error on stdout, exit with its status.
pub fn main<P: Plugin>(plugin: P) -> ! {
    use std::io::Write;
    crate::log::init(crate::log::log_path(|k| std::env::var_os(k)).as_deref());
    // The plugins' global allocator serves SQLite too (see `crate::alloc`).
    crate::store::allocate_through_rust();
    let reply = dispatch(
        &plugin,
        |k| std::env::var_os(k),
        &mut std::io::stdin().lock(),
    );
    let mut out = std::io::stdout().lock();
    // If stdout is gone the runtime has gone too; the exit status still says what happened.
    let _ = out.write_all(&reply.stdout).and_then(|()| out.flush());
    std::process::exit(reply.exit_code)
}
