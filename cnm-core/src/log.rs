//! Diagnostics of plugin processes. stdout is the CNI protocol, so logs go to a file: by
//! default `/var/log/cnm/cnm.log` (directory created 0700), or the path in `CNM_LOG_FILE`;
//! `CNM_LOG_FILE=off` turns logging off. Many plugin processes append to the same file; each line
//! is written with one `write(2)` on an `O_APPEND` descriptor, so lines do not interleave.
//!
//! Every line of a call carries its span (`cni{plugin cmd container ifname}`), so grepping the
//! container ID finds its whole history. A panic is logged with its message and location before
//! the dispatcher turns it into CNI error 100; a process killed outright leaves the steps it had
//! logged, which say how far it got.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Default log file.
pub const DEFAULT_LOG_FILE: &str = "/var/log/cnm/cnm.log";

/// Where this process logs: `CNM_LOG_FILE`, "off", or the default.
pub fn log_path(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    match var("CNM_LOG_FILE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(PathBuf::from(DEFAULT_LOG_FILE)),
    }
}

/// A writer that emits each formatted event with a single `write` on an append-only file.
struct LineWriter(Mutex<std::fs::File>);

impl Write for &LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the file logger and a panic hook that logs; failing to open the log is not an error
/// for the plugin (it runs without logs, and says so on stderr).
pub fn init(path: Option<&Path>) {
    let Some(path) = path else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let file = match OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "cnm: cannot open log {}: {e}; logging to stderr only",
                path.display()
            );
            return;
        }
    };
    let writer: &'static LineWriter = Box::leak(Box::new(LineWriter(Mutex::new(file))));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer)
        .with_ansi(false)
        .with_target(false)
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(at, "panic: {msg}");
        default_hook(info);
    }));
}
