//! Network namespaces: open one by path, create a named one, run code inside one.
//!
//! `setns(2)` changes only the calling thread, so work that must happen inside a namespace (writing
//! `/proc/sys/net/...`, binding a listener) runs on a scoped thread that enters the namespace
//! and then ends. No thread that outlives the closure ever changes namespace, so a panic or an
//! early return cannot leave a kept thread in the wrong namespace. A socket opened inside a
//! namespace keeps working from any thread; opening one is the single exception to the rule
//! ([`Netns::socket`]): the calling thread enters for the `socket(2)` call alone and goes back.
//!
//! A *named* namespace is what `ip netns add` makes: a bind mount of `/proc/thread-self/ns/net`
//! onto a file (by default `/run/netns/NAME`, or any path: [`OwnedNetns::create_at`]), which keeps
//! the namespace alive with no process in it. [`OwnedNetns`] removes its mount and file when
//! dropped, also while unwinding from a panic, or when asked ([`OwnedNetns::remove`], which
//! reports what failed).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where `ip netns` keeps named namespaces; runtimes pass paths below it as `CNI_NETNS`.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Errors of this module; each says which path and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The path does not exist.
    #[error("network namespace {path}: does not exist")]
    NotFound { path: PathBuf },
    /// The path exists but is not a network namespace (a regular file, a directory, another kind).
    #[error("{path} is not a network namespace ({what})")]
    NotNetns { path: PathBuf, what: String },
    /// Any other system call failure.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The thread that was to run inside the namespace panicked.
    #[error("a task inside network namespace {path} panicked")]
    Panicked { path: PathBuf },
}

fn io_err(op: &'static str, path: &Path, source: impl Into<io::Error>) -> NetnsError {
    NetnsError::Io {
        op,
        path: path.to_owned(),
        source: source.into(),
    }
}

// NS_GET_NSTYPE = _IO(0xb7, 0x3): returns the CLONE_NEW* type of a namespace file (Linux 4.11).
nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

/// An open network namespace, kept alive by its file descriptor.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at `path` and checks that it is a network namespace.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(NetnsError::NotFound {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(io_err("open", path, e)),
        };
        let not_netns = |what: &str| NetnsError::NotNetns {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        let meta = file.metadata().map_err(|e| io_err("stat", path, e))?;
        if meta.is_dir() {
            return Err(not_netns("a directory"));
        }
        // SAFETY: `file` is an open descriptor for the duration of the call; the ioctl takes no
        // argument and only reads the descriptor's namespace type.
        match unsafe { ns_get_nstype(file.as_raw_fd()) } {
            Ok(t) if t == libc::CLONE_NEWNET => {}
            Ok(_) => return Err(not_netns("a namespace of another kind")),
            Err(_) if meta.is_file() => return Err(not_netns("a regular file")),
            Err(e) => return Err(not_netns(&format!("not a namespace file: {e}"))),
        }
        Ok(Netns {
            fd: file.into(),
            path: path.to_owned(),
        })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Self, NetnsError> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a socket (`socket(2)` with `domain`, `ty` and `protocol`, close-on-exec) inside this
    /// namespace from the calling thread: the thread enters the namespace, makes the socket and
    /// goes back to its own, with nothing else run in between. A socket keeps the namespace it
    /// was made in for life, whichever thread uses it.
    ///
    /// This is [`Self::run`] without the thread, for the hot path: a short-lived plugin saves the
    /// thread's creation, its stack and the heap arena glibc makes for it (about 0.1 ms). If the
    /// thread cannot go back to its namespace (which would need its own namespace to have become
    /// unenterable while it still holds a descriptor of it), the process aborts rather than go on
    /// in the wrong namespace.
    pub fn socket(
        &self,
        domain: libc::c_int,
        ty: libc::c_int,
        protocol: libc::c_int,
    ) -> Result<OwnedFd, NetnsError> {
        let home = Netns::current()?;
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| io_err("setns", &self.path, e))?;
        // SAFETY: socket(2) takes no pointers; a non-negative result is a new descriptor that
        // nothing else owns.
        let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
        let made = if fd < 0 {
            Err(io_err("socket", &self.path, io::Error::last_os_error()))
        } else {
            // SAFETY: see above: `fd` is open and owned by no one else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        if let Err(e) = setns(home.fd.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!(
                "cnm: cannot return to this thread's network namespace after opening a socket \
                 in {}: {e}; aborting rather than going on in the wrong namespace",
                self.path.display()
            );
            std::process::abort();
        }
        made
    }

    /// A netlink socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`, ...) inside this
    /// namespace, through [`Self::socket`]; the caller binds and configures it.
    pub fn netlink_socket(&self, protocol: isize) -> Result<netlink_sys::Socket, NetnsError> {
        let fd = self.socket(libc::AF_NETLINK, libc::SOCK_DGRAM, protocol as libc::c_int)?;
        // SAFETY: `fd` is a netlink socket that this call owns; the Socket takes it over.
        Ok(unsafe { netlink_sys::Socket::from_raw_fd(fd.into_raw_fd()) })
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    ///
    /// The thread ends with the closure, so no thread outside this call is ever left inside.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io_err("setns", &self.path, e))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetnsError::Panicked {
                path: self.path.clone(),
            })?
        })
    }

    /// Whether two handles refer to the same namespace (same device and inode).
    pub fn same_as(&self, other: &Netns) -> Result<bool, NetnsError> {
        let a =
            nix::sys::stat::fstat(self.fd.as_fd()).map_err(|e| io_err("fstat", &self.path, e))?;
        let b =
            nix::sys::stat::fstat(other.fd.as_fd()).map_err(|e| io_err("fstat", &other.path, e))?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A named network namespace this process created; unmounted and removed on drop.
#[derive(Debug)]
pub struct OwnedNetns {
    ns: Netns,
    /// Cleared by [`OwnedNetns::remove`], which has unmounted already.
    mounted: bool,
}

impl OwnedNetns {
    /// Creates a new, empty network namespace mounted at `dir/name` (as `ip netns add` does when
    /// `dir` is [`NETNS_RUN_DIR`]). Fails if that file already exists.
    pub fn create(dir: impl AsRef<Path>, name: &str) -> Result<Self, NetnsError> {
        let dir = dir.as_ref();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io_err(
                "create netns",
                &dir.join(name),
                io::Error::new(io::ErrorKind::InvalidInput, "invalid namespace name"),
            ));
        }
        Self::create_at(dir.join(name))
    }

    /// Creates a new, empty network namespace mounted at `path` (any path, e.g. under a
    /// runtime's own state directory); missing parent directories are created. Fails if `path`
    /// already exists.
    pub fn create_at(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref();
        let Some(dir) = path.parent().filter(|_| path.file_name().is_some()) else {
            return Err(io_err(
                "create netns",
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            ));
        };
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir).map_err(|e| io_err("mkdir", dir, e))?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_err("create", path, e))?;
        let mounted = std::thread::scope(|s| {
            s.spawn(|| -> Result<(), NetnsError> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io_err("unshare", path, e))?;
                bind_thread_netns(path)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetnsError::Panicked {
                    path: path.to_owned(),
                })
            })
        });
        if let Err(e) = mounted {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        match Netns::open(path) {
            Ok(ns) => Ok(OwnedNetns { ns, mounted: true }),
            Err(e) => {
                remove_mount(path);
                Err(e)
            }
        }
    }

    /// Unmounts and removes the file now, and says what failed (dropping does the same and
    /// says nothing). A mount or file already gone counts as removed.
    pub fn remove(mut self) -> Result<(), NetnsError> {
        self.mounted = false;
        let path = &self.ns.path;
        match umount2(path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (unmounted already); ENOENT: the file is gone.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(io_err("unmount", path, e)),
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", path, e)),
        }
    }

    /// The path of the mount, as a runtime would pass it in `CNI_NETNS`.
    pub fn path(&self) -> &Path {
        self.ns.path()
    }

    /// Keeps the namespace mounted after this value is gone (a sandbox outlives the process
    /// that made it, until it is deleted); returns it, still open.
    pub fn keep(self) -> Netns {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so `ns` is moved out of it exactly once and the
        // `Drop` of `OwnedNetns` (which would unmount) never runs.
        unsafe { std::ptr::read(&me.ns) }
    }
}

impl std::ops::Deref for OwnedNetns {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        if self.mounted {
            remove_mount(&self.ns.path);
        }
    }
}

/// Bind-mounts the calling thread's network namespace onto `path`, an existing file: what keeps
/// a namespace alive with no process in it.
pub fn bind_thread_netns(path: &Path) -> Result<(), NetnsError> {
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| io_err("bind mount", path, e))
}

/// Removes a namespace mount made by [`OwnedNetns::create`] or `ip netns add`; missing is fine.
pub fn remove_mount(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn open_rejects_what_is_not_a_netns() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            Netns::open(&file),
            Err(NetnsError::NotNetns { .. })
        ));
        assert!(matches!(
            Netns::open(dir.path()),
            Err(NetnsError::NotNetns { .. })
        ));
        assert!(matches!(
            Netns::open(dir.path().join("missing")),
            Err(NetnsError::NotFound { .. })
        ));
        assert!(matches!(
            Netns::open("/proc/self/ns/uts"),
            Err(NetnsError::NotNetns { .. })
        ));
    }

    /// A directory for namespace files, or `None` (after saying "skipped") when not root.
    fn root_and_a_dir() -> Option<tempfile::TempDir> {
        if !is_root() {
            eprintln!("skipped: creating a network namespace needs root");
            return None;
        }
        Some(tempfile::tempdir().unwrap())
    }

    /// A new namespace called `name` in a fresh directory, and the calling thread's own.
    fn a_namespace_and_here(name: &str) -> Option<(tempfile::TempDir, OwnedNetns, Netns)> {
        let dir = root_and_a_dir()?;
        let ns = OwnedNetns::create(dir.path(), name).unwrap();
        Some((dir, ns, Netns::current().unwrap()))
    }

    #[test]
    fn create_run_and_drop() {
        let Some((dir, ns, here)) = a_namespace_and_here("t1") else {
            return;
        };
        assert!(!ns.same_as(&here).unwrap());
        let inside = ns.run(|| Netns::current().unwrap()).unwrap();
        assert!(ns.same_as(&inside).unwrap());
        // The calling thread never moved.
        assert!(Netns::current().unwrap().same_as(&here).unwrap());
        let path = ns.path().to_owned();
        drop(ns);
        assert!(!path.exists());
        assert!(OwnedNetns::create(dir.path(), "a/b").is_err());
    }

    #[test]
    fn a_socket_opened_inside_lives_there_and_the_thread_comes_back() {
        let Some((_dir, ns, here)) = a_namespace_and_here("sock") else {
            return;
        };
        let fd = ns
            .socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
            .expect("a socket inside");
        assert!(Netns::current().unwrap().same_as(&here).unwrap());
        // SIOCGSKNS gives the namespace of the socket itself.
        // SAFETY: the ioctl takes no argument and returns a new descriptor, owned here.
        let sk_ns = unsafe { libc::ioctl(fd.as_raw_fd(), 0x894C) };
        assert!(sk_ns >= 0, "SIOCGSKNS: {}", io::Error::last_os_error());
        let sk_ns = Netns {
            // SAFETY: see above.
            fd: unsafe { OwnedFd::from_raw_fd(sk_ns) },
            path: "the socket's namespace".into(),
        };
        assert!(ns.same_as(&sk_ns).unwrap());
        // A failed socket(2) inside still brings the thread back, and says where it failed.
        let err = ns.socket(-1, libc::SOCK_DGRAM, 0).unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
        assert!(Netns::current().unwrap().same_as(&here).unwrap());
    }

    #[test]
    fn create_at_a_path_and_remove() {
        let Some(dir) = root_and_a_dir() else {
            return;
        };
        let path = dir.path().join("state").join("c1");
        let ns = OwnedNetns::create_at(&path).unwrap();
        assert_eq!(ns.path(), path);
        assert!(Netns::open(&path).unwrap().same_as(&ns).unwrap());
        // Taken: the existing namespace is left as it is.
        assert!(OwnedNetns::create_at(&path).is_err());
        assert!(Netns::open(&path).is_ok());
        ns.remove().unwrap();
        assert!(!path.exists());
        assert!(OwnedNetns::create_at("/").is_err());
    }
}
