//! Executing another plugin found on `CNI_PATH`, as libcni's `DelegateAdd/Check/Del` do: for
//! IPAM plugins such as `host-local`, and for chaining.
//!
//! The delegate gets this process's environment with the `CNI_*` variables set from the typed
//! request (so a rollback can run the IPAM's DEL during an ADD), and the network configuration
//! on stdin unchanged. It answers in the configuration's `cniVersion`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::env::{CniArgs, SearchPath, Target};
use super::error::{CniError, ErrorCode};
use super::result::{CniResult, ResultError};
use super::version::SpecVersion;

/// A failed delegation.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// The plugin type is not a bare file name (it would escape `CNI_PATH`).
    #[error("plugin type {0:?} must be a file name, without '/'")]
    BadType(String),
    /// No executable of that name in any `CNI_PATH` directory.
    #[error("plugin {plugin:?} was not found in CNI_PATH ({path}); install it there or fix the \"type\" in the configuration")]
    NotFound { plugin: String, path: String },
    /// The executable could not be run.
    #[error("running {path}: {source}")]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The delegate answered with a CNI error.
    #[error("{plugin} {command} failed: {}", .error.msg)]
    Failed {
        plugin: String,
        command: &'static str,
        error: CniError,
    },
    /// The delegate's result did not parse.
    #[error("{plugin} {command}: {source}")]
    BadResult {
        plugin: String,
        command: &'static str,
        #[source]
        source: ResultError,
    },
}

impl DelegateError {
    /// The CNI code a runtime should see for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DelegateError::BadType(_) | DelegateError::NotFound { .. } => ErrorCode::InvalidConfig,
            DelegateError::Exec { .. } => ErrorCode::Io,
            DelegateError::Failed { error, .. } => error.code,
            DelegateError::BadResult { .. } => ErrorCode::Decode,
        }
    }
}

/// Finds `plugin` in `path` (first directory wins), as libcni's `FindInPath`.
pub fn find_in_path(plugin: &str, path: &SearchPath) -> Result<PathBuf, DelegateError> {
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return Err(DelegateError::BadType(plugin.to_owned()));
    }
    path.0
        .iter()
        .map(|dir| dir.join(plugin))
        .find(|p| is_executable(p))
        .ok_or_else(|| DelegateError::NotFound {
            plugin: plugin.to_owned(),
            path: path.joined(),
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The request context a delegate inherits.
#[derive(Debug, Clone, Copy)]
pub struct Delegation<'a> {
    /// `CNI_PATH` to search and pass on.
    pub path: &'a SearchPath,
    /// `CNI_ARGS`, passed on unchanged.
    pub args: &'a CniArgs,
    /// Container and interface, for ADD/CHECK/DEL.
    pub target: Option<&'a Target>,
    /// `CNI_NETNS`, if any.
    pub netns: Option<&'a Path>,
    /// The version the delegate answers in.
    pub version: SpecVersion,
}

impl Delegation<'_> {
    /// Runs the delegate's ADD and parses its result.
    pub fn add(&self, plugin: &str, stdin: &[u8]) -> Result<CniResult, DelegateError> {
        let out = self.exec("ADD", plugin, stdin)?;
        let value: Value = serde_json::from_slice(&out).map_err(|e| DelegateError::BadResult {
            plugin: plugin.to_owned(),
            command: "ADD",
            source: ResultError::Invalid {
                what: "result",
                version: self.version,
                why: format!("output is not JSON: {e}"),
            },
        })?;
        CniResult::from_json(self.version, value, "result").map_err(|source| {
            DelegateError::BadResult {
                plugin: plugin.to_owned(),
                command: "ADD",
                source,
            }
        })
    }

    /// Runs the delegate's CHECK.
    pub fn check(&self, plugin: &str, stdin: &[u8]) -> Result<(), DelegateError> {
        self.exec("CHECK", plugin, stdin).map(drop)
    }

    /// Runs the delegate's DEL.
    pub fn del(&self, plugin: &str, stdin: &[u8]) -> Result<(), DelegateError> {
        self.exec("DEL", plugin, stdin).map(drop)
    }

    /// Runs the delegate's GC (1.1.0).
    pub fn gc(&self, plugin: &str, stdin: &[u8]) -> Result<(), DelegateError> {
        self.exec("GC", plugin, stdin).map(drop)
    }

    /// Runs the delegate's STATUS (1.1.0).
    pub fn status(&self, plugin: &str, stdin: &[u8]) -> Result<(), DelegateError> {
        self.exec("STATUS", plugin, stdin).map(drop)
    }

    fn exec(
        &self,
        command: &'static str,
        plugin: &str,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        let exe = find_in_path(plugin, self.path)?;
        let exec_err = |source| DelegateError::Exec {
            path: exe.clone(),
            source,
        };
        let mut cmd = Command::new(&exe);
        cmd.env("CNI_COMMAND", command)
            .env("CNI_PATH", self.path.joined())
            .env("CNI_ARGS", self.args.raw())
            .env_remove("CNI_CONTAINERID")
            .env_remove("CNI_IFNAME")
            .env_remove("CNI_NETNS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = self.target {
            cmd.env("CNI_CONTAINERID", t.container_id.as_str())
                .env("CNI_IFNAME", t.ifname.as_str());
        }
        if let Some(ns) = self.netns {
            cmd.env("CNI_NETNS", ns);
        }
        let mut child = spawn_retrying_busy(&mut cmd).map_err(exec_err)?;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A delegate that exits without reading stdin closes the pipe: its exit status tells.
        let written = pipe.write_all(stdin);
        drop(pipe);
        let out = child.wait_with_output().map_err(exec_err)?;
        if out.status.success() {
            // A delegate may succeed without reading all of stdin; only other write errors count.
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(exec_err(e)),
                _ => {
                    crate::fault::side_effect("delegated call");
                    return Ok(out.stdout);
                }
            }
        }
        Err(DelegateError::Failed {
            plugin: plugin.to_owned(),
            command,
            error: parse_error(&out.stdout, &out.stderr, out.status),
        })
    }
}

/// Spawns `cmd`, retrying briefly on ETXTBSY: an executable that was just written may still be
/// open for writing in a child that another thread forked at that moment (libcni retries too).
fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut delay = std::time::Duration::from_millis(1);
    for _ in 0..8 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(delay),
            other => return other,
        }
        delay *= 2;
    }
    cmd.spawn()
}

/// Reads a failed plugin's CNI error from stdout, falling back to stderr as libcni does.
fn parse_error(stdout: &[u8], stderr: &[u8], status: std::process::ExitStatus) -> CniError {
    #[derive(serde::Deserialize)]
    struct Wire {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    if let Ok(w) = serde_json::from_slice::<Wire>(stdout) {
        return CniError::new(ErrorCode::from_u32(w.code), w.msg).with_details(w.details);
    }
    let text = if stdout.iter().all(u8::is_ascii_whitespace) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    CniError::new(
        ErrorCode::Io,
        format!("exited with {status} and no CNI error on stdout"),
    )
    .with_details(text.trim().chars().take(4096).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn ctx<'a>(path: &'a SearchPath, args: &'a CniArgs, target: &'a Target) -> Delegation<'a> {
        Delegation {
            path,
            args,
            target: Some(target),
            netns: Some(Path::new("/run/netns/x")),
            version: SpecVersion::V1_0_0,
        }
    }

    #[test]
    fn finds_first_executable_and_passes_env_and_stdin() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("ipam"), "not executable").unwrap();
        let log = b.path().join("log");
        script(
            b.path(),
            "ipam",
            &format!(
                "echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS $CNI_ARGS\" > {l}; cat >> {l}; \
                 echo '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.9.0.2/24\",\"gateway\":\"10.9.0.1\"}}]}}'",
                l = log.display()
            ),
        );
        let path = SearchPath(vec![a.path().into(), b.path().into()]);
        let args = CniArgs::parse("IP=10.9.0.2").unwrap();
        let target = Target {
            container_id: super::super::env::ContainerId::new("c1").unwrap(),
            ifname: super::super::env::IfName::new("eth0").unwrap(),
        };
        let r = ctx(&path, &args, &target)
            .add("ipam", b"{\"x\":1}")
            .unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.9.0.2/24");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(logged, "ADD c1 eth0 /run/netns/x IP=10.9.0.2\n{\"x\":1}");
    }

    #[test]
    fn errors_of_the_delegate_pass_through() {
        let d = tempfile::tempdir().unwrap();
        script(d.path(), "fails", "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\",\"details\":\"d\"}'; exit 1");
        script(d.path(), "crashes", "echo boom >&2; exit 2");
        script(d.path(), "garbage", "echo '{\"ips\": 5}'");
        let path = SearchPath(vec![d.path().into()]);
        let args = CniArgs::default();
        let target = Target {
            container_id: super::super::env::ContainerId::new("c1").unwrap(),
            ifname: super::super::env::IfName::new("eth0").unwrap(),
        };
        let c = ctx(&path, &args, &target);
        let e = c.add("fails", b"{}").unwrap_err();
        assert_eq!(e.code(), ErrorCode::TryAgainLater);
        assert!(e.to_string().contains("fails ADD failed: busy"), "{e}");
        let e = c.del("crashes", b"{}").unwrap_err();
        let DelegateError::Failed { error, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(error.details, "boom");
        assert_eq!(
            c.add("garbage", b"{}").unwrap_err().code(),
            ErrorCode::Decode
        );
        assert!(matches!(
            c.add("missing", b"{}"),
            Err(DelegateError::NotFound { .. })
        ));
        assert!(matches!(
            c.add("../bin/sh", b"{}"),
            Err(DelegateError::BadType(_))
        ));
    }
}
