//! Throwaway namespaces for tests: a "host" that plugins run in, and containers they attach.
//!
//! Both are named network namespaces under [`NETNS_RUN_DIR`] (`cnmt-PID-N-TAG`), so that
//! `ip netns list` shows what a test left behind and `CNI_NETNS` looks as it does under a real
//! runtime. Dropping a [`Host`] or a [`Container`] unmounts its namespace, also during a panic;
//! the kernel then frees it and every interface inside once the last plugin process is gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cnm_core::netns::{Netns, NetnsError, OwnedNetns, NETNS_RUN_DIR};

use crate::config::RuntimeConf;
use crate::error::Error;
use crate::net::ip;
use crate::runtime::Runtime;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A namespace name unique to this process and call: `cnmt-PID-N-TAG`.
pub fn unique_name(tag: &str) -> String {
    format!("cnmt-{}-{}-{tag}", std::process::id(), next())
}

/// An interface name unique to this process and call: `PREFIX` (at most 4 bytes) + `PID-N` in
/// hex, at most 15 bytes.
pub fn unique_ifname(prefix: &str) -> String {
    assert!(
        prefix.len() <= 4,
        "interface name prefix {prefix:?} is too long"
    );
    let pid = std::process::id() & 0xff_ffff;
    format!("{prefix}{pid:x}-{:x}", next() & 0xffff)
}

/// Creates a uniquely named namespace with `lo` up; retries on a name left by an earlier process.
fn create_netns(tag: &str) -> Result<OwnedNetns, Error> {
    let mut attempt = 0;
    let ns = loop {
        match OwnedNetns::create(NETNS_RUN_DIR, &unique_name(tag)) {
            Err(NetnsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists && attempt < 10 =>
            {
                attempt += 1;
            }
            other => break other?,
        }
    };
    ip(&ns, &["link", "set", "lo", "up"]).map_err(|source| Error::Io {
        what: format!("set lo up in {}", ns.path().display()),
        source,
    })?;
    Ok(ns)
}

/// The host side of a test: a throwaway namespace plugins run in, and a temporary state directory.
#[derive(Debug)]
pub struct Host {
    ns: OwnedNetns,
    dir: tempfile::TempDir,
}

impl Host {
    /// Creates a host namespace (with `lo` up) and an empty state directory.
    pub fn new(tag: &str) -> Result<Self, Error> {
        let ns = create_netns(tag)?;
        let dir = tempfile::Builder::new()
            .prefix("cnmt-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "create a state directory".into(),
                source,
            })?;
        Ok(Host { ns, dir })
    }

    /// The host namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// A temporary directory for this test's state (IPAM data, result cache), removed on drop.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A runtime whose plugins run in this host, with its result cache in `state_dir()/cache`.
    pub fn runtime(&self, cni_path: Vec<PathBuf>) -> Result<Runtime, Error> {
        let host = Netns::open(self.ns.path())?;
        let mut rt = Runtime::new(cni_path, self.state_dir().join("cache"), host);
        // cnm's plugins log here instead of /var/log/cnm (other plugins ignore the variable).
        rt.extra_env
            .push(("CNM_LOG_FILE".into(), self.log_file().display().to_string()));
        Ok(rt)
    }

    /// The log file of cnm's plugins run through [`Host::runtime`].
    pub fn log_file(&self) -> PathBuf {
        self.state_dir().join("cnm.log")
    }
}

/// A container's network namespace, as a runtime would create before ADD.
#[derive(Debug)]
pub struct Container {
    ns: OwnedNetns,
    id: String,
}

impl Container {
    /// Creates a container namespace with `lo` up, and a fresh 64-hex-digit container ID.
    pub fn new(tag: &str) -> Result<Self, Error> {
        let ns = create_netns(tag)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{:08x}{:08x}{nanos:048x}", std::process::id(), next());
        Ok(Container { ns, id })
    }

    /// The namespace path, for CNI_NETNS.
    pub fn path(&self) -> &Path {
        self.ns.path()
    }

    /// The container ID, for CNI_CONTAINERID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Runs `f` on a thread inside the container namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        self.ns.run(f)
    }

    /// Runtime parameters for attaching this container as `ifname`, without args.
    pub fn runtime_conf(&self, ifname: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: self.id.clone(),
            netns: self.path().to_owned(),
            ifname: ifname.to_owned(),
            ..RuntimeConf::default()
        }
    }
}
