//! The sandbox: one container's network namespace, named by its key (the path of the namespace's
//! bind mount, as libnetwork's `Sandbox.Key()`), with the hosts and resolv.conf files a
//! container runtime mounts into the container.
//!
//! ```text
//! <run_dir>/netns/<container>                  the namespace (bind mount)
//! <run_dir>/host-netns                         the host's namespace, for host sandboxes
//! <run_dir>/sandboxes/<container>/sandbox.json hostname, domain name, host or not
//!                                /hosts        localhost lines + one line per joined address
//!                                /resolv.conf  name servers and search domains
//! ```

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::controller::Inner;
use super::{io_err, ModelError, SandboxOptions};
use crate::cni::env::ContainerId;
use crate::error::{Error, Result};
use crate::netns::{remove_mount, Netns, OwnedNetns};

/// One container's network namespace and its name-resolution files.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
    container_id: ContainerId,
    key: PathBuf,
    dir: PathBuf,
    hostname: Option<String>,
    domainname: Option<String>,
    host: bool,
}

/// libnetwork's fixed lines of a container's hosts file.
const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// libnetwork's name servers when the host has none but loopback ones (Google's public DNS).
const DEFAULT_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

impl Sandbox {
    fn dir_of(inner: &Inner, id: &ContainerId) -> PathBuf {
        inner.config.run_dir.join("sandboxes").join(id.as_str())
    }

    /// Makes the namespace and the files; nothing is left if a step fails.
    pub(super) fn create(
        inner: &Arc<Inner>,
        id: ContainerId,
        options: SandboxOptions,
    ) -> Result<Sandbox> {
        let dir = Self::dir_of(inner, &id);
        let parent = dir.parent().expect("sandboxes/<id> has a parent");
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ModelError::SandboxExists(id.to_string()).into())
            }
            Err(e) => return Err(io_err("create directory", &dir)(e).into()),
        }
        let made = Self::populate(inner, &id, &dir, options);
        if made.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        made
    }

    fn populate(
        inner: &Arc<Inner>,
        id: &ContainerId,
        dir: &Path,
        options: SandboxOptions,
    ) -> Result<Sandbox> {
        let netns_dir = inner.config.run_dir.join("netns");
        let key = if options.use_host_namespace {
            // Beside the containers' namespaces, not among them: any name there is a valid
            // container ID.
            let key = host_key(inner);
            if Netns::open(&key).is_err() {
                bind_current(&key)?;
            }
            key
        } else {
            let ns = OwnedNetns::create(&netns_dir, id.as_str()).map_err(Error::Netns)?;
            // The loopback is up in every container namespace, as runtimes leave it.
            let mut inside = crate::netlink::Handle::new_in(&ns).map_err(Error::Netlink)?;
            if let Some(lo) = inside.link_by_name("lo").map_err(Error::Netlink)? {
                inside.set_up(lo.index).map_err(Error::Netlink)?;
            }
            ns.keep().path().to_owned()
        };
        let sandbox = Sandbox {
            inner: inner.clone(),
            container_id: id.clone(),
            key,
            dir: dir.to_owned(),
            hostname: options.hostname.clone(),
            domainname: options.domainname.clone(),
            host: options.use_host_namespace,
        };
        let written = sandbox
            .write_meta()
            .and_then(|()| sandbox.write_resolv_conf(&options))
            .and_then(|()| sandbox.write_hosts(&[]));
        if let Err(e) = written {
            if !sandbox.host {
                remove_mount(&sandbox.key);
            }
            return Err(e);
        }
        Ok(sandbox)
    }

    /// The sandbox of `id` if it exists.
    pub(super) fn open(inner: &Arc<Inner>, id: ContainerId) -> Result<Option<Sandbox>> {
        let dir = Self::dir_of(inner, &id);
        let meta_path = dir.join("sandbox.json");
        let meta: serde_json::Value = match fs::read(&meta_path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &meta_path)(e).into()),
        };
        let text = |k: &str| meta[k].as_str().map(str::to_owned);
        let host = meta["host"].as_bool().unwrap_or(false);
        let netns_dir = inner.config.run_dir.join("netns");
        Ok(Some(Sandbox {
            inner: inner.clone(),
            key: if host {
                host_key(inner)
            } else {
                netns_dir.join(id.as_str())
            },
            container_id: id,
            dir,
            hostname: text("hostname"),
            domainname: text("domainname"),
            host,
        }))
    }

    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The container this sandbox belongs to.
    pub fn container_id(&self) -> &ContainerId {
        &self.container_id
    }

    /// The sandbox key: the path of its network namespace (what CNI calls `CNI_NETNS`).
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Whether this sandbox is the host's own namespace.
    pub fn is_host(&self) -> bool {
        self.host
    }

    /// The host name.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// The domain name.
    pub fn domainname(&self) -> Option<&str> {
        self.domainname.as_deref()
    }

    /// The container's hosts file.
    pub fn hosts_path(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// The container's resolv.conf.
    pub fn resolv_conf_path(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// Opens the namespace.
    pub fn netns(&self) -> Result<Netns> {
        Netns::open(&self.key).map_err(Error::Netns)
    }

    /// Runs `f` inside the sandbox's namespace (on a thread that ends with it).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        self.netns()?.run(f).map_err(Error::Netns)
    }

    /// Leaves every endpoint joined to this sandbox (whoever joined them: the library or a CNI
    /// ADD), then removes the namespace and the files (libnetwork's `Sandbox.Delete`).
    pub fn delete(self) -> Result<()> {
        let controller = super::Controller::from_inner(self.inner.clone());
        // Teardown keeps going: every endpoint is tried, the first failure is returned at the end.
        let mut failed = None;
        for (network, target) in controller.attachments_of(&self.container_id)? {
            if let Err(e) = network.leave(&target, Some(&self.key)) {
                tracing::warn!(
                    "sandbox {}: leaving {}: {e}",
                    self.container_id,
                    network.name()
                );
                failed.get_or_insert(e);
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        // The host's namespace is shared by every host sandbox: its key goes with the last.
        if !self.host || !controller.other_host_sandbox(&self.container_id)? {
            remove_mount(&self.key);
        }
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))?;
        Ok(())
    }

    fn write_meta(&self) -> Result<()> {
        let meta = json!({
            "hostname": self.hostname,
            "domainname": self.domainname,
            "host": self.host,
        });
        write(&self.dir.join("sandbox.json"), meta.to_string())
    }

    /// Rewrites the hosts file with one line per address of the container.
    pub(super) fn write_hosts(&self, addresses: &[IpAddr]) -> Result<()> {
        let mut hosts = HOSTS_HEADER.to_owned();
        if let Some(name) = &self.hostname {
            let names = match &self.domainname {
                Some(d) => format!("{name}.{d} {name}"),
                None => name.clone(),
            };
            for a in addresses {
                hosts.push_str(&format!("{a}\t{names}\n"));
            }
        }
        write(&self.hosts_path(), hosts)
    }

    fn write_resolv_conf(&self, options: &SandboxOptions) -> Result<()> {
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        write(&self.resolv_conf_path(), resolv_conf(&host, options))
    }
}

/// A container's resolv.conf from the host's: name servers and search domains unless the
/// options give them, never a loopback name server (it would be the container's own loopback).
fn resolv_conf(host: &str, options: &SandboxOptions) -> String {
    let mut servers: Vec<String> = options.dns.iter().map(IpAddr::to_string).collect();
    let mut search: Vec<String> = options.dns_search.clone();
    let mut other = Vec::new();
    for line in host.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") if options.dns.is_empty() => {
                let usable = words
                    .next()
                    .and_then(|w| w.parse::<IpAddr>().ok())
                    .filter(|a| !a.is_loopback());
                servers.extend(usable.map(|a| a.to_string()));
            }
            Some("search") if options.dns_search.is_empty() => {
                search.extend(words.map(str::to_owned));
            }
            Some("options") => other.push(line.to_owned()),
            _ => {}
        }
    }
    if servers.is_empty() {
        servers = DEFAULT_DNS.iter().map(|s| s.to_string()).collect();
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    for o in other {
        out.push_str(&o);
        out.push('\n');
    }
    out
}

fn write(path: &Path, content: String) -> Result<()> {
    // Written whole and renamed, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, content).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    Ok(())
}

/// The host sandboxes' key.
fn host_key(inner: &Inner) -> PathBuf {
    inner.config.run_dir.join("host-netns")
}

/// Bind-mounts the calling thread's namespace at `path` (the host sandbox's key).
fn bind_current(path: &Path) -> Result<()> {
    fs::File::create(path).map_err(io_err("create", path))?;
    crate::netns::bind_thread_netns(path).map_err(Error::Netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers_and_falls_back() {
        let host = "nameserver 127.0.0.53\nsearch example.org\noptions edns0\n";
        let out = resolv_conf(host, &SandboxOptions::default());
        assert_eq!(
            out,
            "search example.org\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"
        );
        let host = "nameserver 10.0.0.2\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(host, &SandboxOptions::default()),
            "nameserver 10.0.0.2\n"
        );
        let opts = SandboxOptions {
            dns: vec!["1.1.1.1".parse().unwrap()],
            dns_search: vec!["docker.io".into()],
            ..SandboxOptions::default()
        };
        assert_eq!(
            resolv_conf(host, &opts),
            "search docker.io\nnameserver 1.1.1.1\n"
        );
    }
}
