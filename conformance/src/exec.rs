//! Finding and executing plugin binaries the way libcni's `invoke` package does, except that the
//! child first enters a chosen network namespace, so nothing a plugin does lands in the namespace
//! this process runs in.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cnm_core::netns::Netns;
use serde_json::Value;

/// The only PATH a plugin sees; nothing else is inherited from this process's environment.
pub const PLUGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a plugin type could not be resolved to a file (libcni's `FindInPath`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FindError {
    /// The plugin type is empty.
    #[error("no plugin name provided")]
    NoName,
    /// The type contains a path separator: it must name a file inside CNI_PATH.
    #[error("invalid plugin name: {0}")]
    InvalidName(String),
    /// CNI_PATH is empty.
    #[error("no paths provided")]
    NoPaths,
    /// No directory holds a regular file of that name.
    #[error("failed to find plugin {name:?} in path {dirs:?}")]
    NotFound {
        /// The plugin type.
        name: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },
}

/// Returns the first regular file named `plugin_type` in `dirs`.
pub fn find_plugin(plugin_type: &str, dirs: &[PathBuf]) -> Result<PathBuf, FindError> {
    if plugin_type.is_empty() {
        return Err(FindError::NoName);
    }
    if plugin_type.contains('/') {
        return Err(FindError::InvalidName(plugin_type.to_owned()));
    }
    if dirs.is_empty() {
        return Err(FindError::NoPaths);
    }
    dirs.iter()
        .map(|d| d.join(plugin_type))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| FindError::NotFound {
            name: plugin_type.to_owned(),
            dirs: dirs.to_vec(),
        })
}

/// A plugin that exited unsuccessfully, with its CNI error (SPEC §Error) when it printed one.
#[derive(Debug, Clone)]
pub struct PluginError {
    /// The error `code`; `None` when stdout held no parsable CNI error.
    pub code: Option<u64>,
    /// The error `msg`, or libcni's fallback built from stderr.
    pub msg: String,
    /// The error `details`, empty when absent.
    pub details: String,
    /// The error's `cniVersion`, when present.
    pub cni_version: Option<String>,
    /// Everything the plugin wrote to stderr.
    pub stderr: String,
    /// How the plugin exited.
    pub status: ExitStatus,
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        write!(f, ": {}", self.msg)?;
        if !self.details.is_empty() {
            write!(f, "; {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}

impl PluginError {
    /// Interprets a failed run's output as libcni's `pluginErr` does: a JSON error on stdout, or
    /// else a message made from stderr.
    pub fn from_output(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Self {
        let stderr = String::from_utf8_lossy(stderr).into_owned();
        let mut err = PluginError {
            code: None,
            msg: String::new(),
            details: String::new(),
            cni_version: None,
            stderr,
            status,
        };
        if stdout.iter().all(u8::is_ascii_whitespace) {
            err.msg = if err.stderr.is_empty() {
                format!("netplugin failed with no error message: {status}")
            } else {
                format!("netplugin failed: {:?}", err.stderr)
            };
            return err;
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        match serde_json::from_slice::<Value>(stdout) {
            Ok(Value::Object(o)) => {
                err.code = o.get("code").and_then(Value::as_u64);
                err.msg = text(o.get("msg")).unwrap_or_default();
                err.details = text(o.get("details")).unwrap_or_default();
                err.cni_version = text(o.get("cniVersion"));
            }
            _ => {
                err.msg = format!(
                    "netplugin failed but its diagnostic message is not a JSON object: {:?}",
                    String::from_utf8_lossy(stdout)
                );
            }
        }
        err
    }
}

/// Why executing a plugin did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The process could not be started (or entering the host namespace failed).
    #[error("start {path}: {source}")]
    Spawn {
        /// The plugin binary.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The process was killed because it ran longer than allowed.
    #[error("{path} did not finish within {timeout:?} and was killed; stderr: {stderr:?}")]
    Timeout {
        /// The plugin binary.
        path: PathBuf,
        /// The time it was given.
        timeout: Duration,
        /// What it wrote to stderr before it was killed.
        stderr: String,
    },
    /// The process ran and failed.
    #[error(transparent)]
    Failed(Box<PluginError>),
}

impl ExecError {
    /// The plugin's error, when it ran and failed.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            ExecError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// A command whose child enters `ns` between fork and exec.
///
/// The namespace descriptor is duplicated into the command, so it stays valid however long the
/// command lives.
pub fn command_in(ns: &Netns, program: impl AsRef<OsStr>) -> io::Result<Command> {
    let fd: OwnedFd = ns.as_fd().try_clone_to_owned()?;
    let mut cmd = Command::new(program);
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes one system call (setns) on a descriptor the closure owns and
    // builds an io::Error from an errno, which does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    Ok(cmd)
}

/// Runs the plugin at `path` inside the `host` namespace with exactly `env` (plus PATH) and
/// `stdin`, and returns its stdout when it exits 0.
pub fn exec_plugin(
    path: &Path,
    host: &Netns,
    env: &[(String, String)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExecError> {
    let spawn_err = |source| ExecError::Spawn {
        path: path.to_owned(),
        source,
    };
    let mut cmd = command_in(host, path).map_err(spawn_err)?;
    cmd.env_clear()
        .env("PATH", PLUGIN_PATH)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_retrying(&mut cmd).map_err(spawn_err)?;
    let (status, stdout, stderr) = communicate(&mut child, stdin, timeout).map_err(spawn_err)?;
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(ExecError::Failed(Box::new(PluginError::from_output(
            s, &stdout, &stderr,
        )))),
        None => Err(ExecError::Timeout {
            path: path.to_owned(),
            timeout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
    }
}

/// Spawns, retrying on ETXTBSY as libcni does: a file just written is "busy" while any other
/// thread's forked child still holds the writer's descriptor, which parallel tests make likely.
fn spawn_retrying(cmd: &mut Command) -> io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Writes stdin, collects stdout and stderr, and waits at most `timeout` for the child to exit
/// (killing it after that). Returns `None` as the status when it had to be killed.
fn communicate(
    child: &mut Child,
    stdin: &[u8],
    timeout: Duration,
) -> io::Result<(Option<ExitStatus>, Vec<u8>, Vec<u8>)> {
    let mut input = child.stdin.take().expect("stdin is piped");
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    std::thread::scope(|s| {
        // A plugin may exit without reading stdin; the broken pipe that follows is not an error.
        s.spawn(move || drop(input.write_all(stdin)));
        let stdout = s.spawn(move || read_all(&mut out));
        let stderr = s.spawn(move || read_all(&mut err));
        let status = match wait_timeout(child, timeout)? {
            Some(status) => Some(status),
            None => {
                child.kill()?;
                child.wait()?;
                None
            }
        };
        let stdout = stdout.join().expect("reader does not panic")?;
        let stderr = stderr.join().expect("reader does not panic")?;
        Ok((status, stdout, stderr))
    })
}

fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Waits for `child` to exit for at most `timeout`, through a pidfd: unlike a watchdog thread that
/// signals a pid, it cannot race with the pid being reaped and reused.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; the child has
    // not been waited for, so its pid cannot have been reused.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor that pidfd_open just returned and nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd that outlives the call, and nfds is 1.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => return Ok(None),
            n if n > 0 => return child.wait().map(Some),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn synthetic_status(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn find_plugin_like_libcni() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().join("none"), dir.path().to_owned()];
        std::fs::write(dir.path().join("p"), b"").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(find_plugin("p", &dirs).unwrap(), dir.path().join("p"));
        assert_eq!(find_plugin("", &dirs), Err(FindError::NoName));
        assert_eq!(
            find_plugin("../p", &dirs),
            Err(FindError::InvalidName("../p".into()))
        );
        assert_eq!(find_plugin("p", &[]), Err(FindError::NoPaths));
        assert!(matches!(
            find_plugin("d", &dirs),
            Err(FindError::NotFound { .. })
        ));
    }

    #[test]
    fn error_output_is_parsed_like_libcni() {
        let st = synthetic_status(1);
        let e = PluginError::from_output(
            st,
            br#"{"cniVersion":"1.0.0","code":7,"msg":"bad","details":"why"}"#,
            b"log",
        );
        assert_eq!(
            (e.code, e.msg.as_str(), e.details.as_str()),
            (Some(7), "bad", "why")
        );
        assert_eq!(e.cni_version.as_deref(), Some("1.0.0"));
        assert_eq!(e.stderr, "log");
        assert_eq!(e.to_string(), "exit status: 1, code 7: bad; why");

        let e = PluginError::from_output(st, b"", b"boom");
        assert_eq!(
            (e.code, e.msg.as_str()),
            (None, "netplugin failed: \"boom\"")
        );
        let e = PluginError::from_output(st, b"\n", b"");
        assert!(e.msg.starts_with("netplugin failed with no error message"));
        let e = PluginError::from_output(st, b"not json", b"");
        assert!(e.code.is_none() && e.msg.contains("not json"));
    }
}
