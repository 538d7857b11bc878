//! Runs any CNI plugin binary exactly as a runtime (libcni, containerd, cnitool) does, in
//! throwaway network namespaces.
//!
//! The crate shares no types with the code under test: configs and results are
//! `serde_json::Value`s. Plugins always run inside a [`Host`] namespace made for the test, so
//! bridges, firewall rules and sysctls never land in the namespace of the machine.

#![warn(missing_docs)]

pub mod cache;
pub mod config;
pub mod error;
pub mod exec;
pub mod net;
pub mod ns;
pub mod runtime;

pub use config::{Command, NetworkConfigList, RuntimeConf};
pub use error::Error;
pub use exec::{exec_plugin, find_plugin, ExecError, PluginError};
pub use net::{ip, link_names, ping, tcp_roundtrip};
pub use ns::{unique_ifname, unique_name, Container, Host};
pub use runtime::{Attachment, Runtime, VersionInfo};

/// Whether this process may create namespaces; prints `skipped: TEST: needs root` when not.
///
/// Panics instead when `CI` is set: a test must never pass in CI without having run.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI is set: refusing to skip");
    }
    eprintln!("skipped: {test}: needs root");
    false
}

/// Whether every plugin in `names` is in `dir`; prints `skipped: TEST: ...` when not.
///
/// Panics instead when `CI` is set, like [`require_root`].
pub fn require_plugins(test: &str, dir: &std::path::Path, names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !dir.join(n).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("needs plugins {missing:?} in {}", dir.display());
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}, and CI is set: refusing to skip");
    }
    eprintln!("skipped: {test}: {why}");
    false
}

/// Where cnm's own plugin binaries are: `CNM_PLUGIN_DIR`, or the cargo target directory this
/// test or example was built into (`target/debug` for `target/debug/deps/test-HASH`).
pub fn cnm_plugin_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("CNM_PLUGIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe has a directory").to_path_buf();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}
