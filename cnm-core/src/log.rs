//! Diagnostics of plugin processes. stdout is the CNI protocol, so logs go to a file: by
//! default `/var/log/cnm/cnm.log` (directory created 0700), or the path in `CNM_LOG_FILE`;
//! `CNM_LOG_FILE=off` turns logging off. Many plugin processes append to the same file; each line
//! is written with one `write(2)` on an `O_APPEND` descriptor, so lines do not interleave. A
//! file that has reached [`ROTATE_AT`] is renamed to `<file>.1` (replacing the one before) by the
//! next process that opens it, which starts a new one: the logs of a node never take more than
//! twice that.
//!
//! Every line of a call carries its span (`cni{plugin cmd container ifname}`), so grepping the
//! container ID finds its whole history. A panic is logged with its message and location before
//! the dispatcher turns it into CNI error 100; a process killed outright leaves the steps it had
//! logged, which say how far it got.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Default log file.
pub const DEFAULT_LOG_FILE: &str = "/var/log/cnm/cnm.log";

/// The size at which a log file is rotated (a plugin call logs a few hundred bytes).
pub const ROTATE_AT: u64 = 16 << 20;

/// Where this process logs: `CNM_LOG_FILE`, "off", or the default.
pub fn log_path(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    match var("CNM_LOG_FILE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(PathBuf::from(DEFAULT_LOG_FILE)),
    }
}

/// Opens the log at `path` for appending (its directory made 0700, the file 0600); a file of
/// `rotate_at` bytes or more is first moved to `<path>.1`, unless another process has rotated it
/// since it was opened here.
fn open(path: &Path, rotate_at: u64) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
    };
    let file = open()?;
    let meta = file.metadata()?;
    if meta.len() < rotate_at {
        return Ok(file);
    }
    let still_ours =
        std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()));
    if still_ours {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        std::fs::rename(path, rotated)?;
    }
    open()
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
    let file = match open(path, ROTATE_AT) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_moves_to_dot_one_and_a_new_one_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("cnm.log");
        let rotated = dir.path().join("logs").join("cnm.log.1");
        let mut f = open(&path, 100).unwrap();
        f.write_all(&[b'a'; 99]).unwrap();
        // Below the limit: appended to.
        let mut f = open(&path, 100).unwrap();
        f.write_all(b"b").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
        assert!(!rotated.exists());
        // At the limit: moved aside, and the next lines go to a new file.
        let mut f = open(&path, 100).unwrap();
        f.write_all(b"c").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"c");
        assert_eq!(std::fs::metadata(&rotated).unwrap().len(), 100);
        // The next rotation replaces the old one.
        f.write_all(&[b'd'; 150]).unwrap();
        open(&path, 100).unwrap();
        assert_eq!(std::fs::metadata(&rotated).unwrap().len(), 151);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
    }
}
