//! A per-network lock between ADDs and the teardown of a network's host side.
//!
//! `<dataDir>/locks/<network>` (directory 0700, files 0600, never followed if a symbolic link).
//! An ADD holds it shared until its endpoint is reserved in the store; the teardown that runs
//! after a network's last endpoint left holds it exclusively while it checks that no endpoint
//! is left and removes the bridge and the network's elements. Without it, a DEL of the last
//! endpoint could remove a bridge that a concurrent ADD had just found ready. The kernel drops
//! the lock with the process, so a killed plugin never leaves it held.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::{StoreError, StoreResult};
use crate::cni::config::NetworkName;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct NetworkLock {
    _file: Flock<File>,
}

impl NetworkLock {
    /// Waits for and takes the network's lock, shared (ADD) or exclusive (teardown).
    pub fn take(dir: &Path, network: &NetworkName, exclusive: bool) -> StoreResult<Self> {
        let err = |what: &str, source: std::io::Error| StoreError::Dir {
            path: dir.display().to_string(),
            what: what.to_owned(),
            source: Some(source),
        };
        super::sqlite::check_dir(dir)?;
        let locks = dir.join("locks");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&locks)
            .map_err(|e| err("creating locks/ (mode 0700)", e))?;
        // A network name has no '/' and does not start with '.': it is one plain file name.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(locks.join(network.as_str()))
            .map_err(|e| err(&format!("opening the lock of network {network}"), e))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let file = Flock::lock(file, arg)
            .map_err(|(_, e)| err(&format!("locking network {network}"), e.into()))?;
        Ok(NetworkLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn shared_locks_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let net = NetworkName::new("n1").unwrap();
        let a = NetworkLock::take(dir.path(), &net, false).unwrap();
        let b = NetworkLock::take(dir.path(), &net, false).unwrap();
        let taken = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _x = NetworkLock::take(dir.path(), &net, true).unwrap();
                taken.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !taken.load(Ordering::SeqCst),
                "exclusive while shared are held"
            );
            drop(a);
            drop(b);
        });
        assert!(taken.load(Ordering::SeqCst));
        // Another network's lock is independent.
        let other = NetworkName::new("n2").unwrap();
        let _x = NetworkLock::take(dir.path(), &net, true).unwrap();
        let _y = NetworkLock::take(dir.path(), &other, true).unwrap();
        assert!(NetworkLock::take(Path::new("relative"), &net, true).is_err());
    }
}
