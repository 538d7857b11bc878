//! A throwaway host for demos, examples and tests: a new network namespace that plays the host
//! (so the machine's own is never touched) and a directory for the controller's state. When it
//! is dropped, also while unwinding from a panic, every sandbox made in it is deleted, then the
//! namespace (and with it every bridge, veth and nftables rule made in it) and the directory.

use std::path::{Path, PathBuf};

use super::{Controller, ControllerConfig};
use crate::error::{Error, Result};
use crate::netns::{Netns, OwnedNetns, NETNS_RUN_DIR};

/// A throwaway host namespace with a state directory.
#[derive(Debug)]
pub struct Scratch {
    host: Option<OwnedNetns>,
    dir: PathBuf,
}

impl Scratch {
    /// Makes `/run/netns/cnm-<label>-<pid>` and `<tmp>/cnm-<label>-<pid>` (a second one with
    /// the same label in this process gets `-2`, `-3`, ... after the pid).
    pub fn new(label: &str) -> Result<Scratch> {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut name = format!("cnm-{label}-{}", std::process::id());
        if n > 0 {
            name.push_str(&format!("-{}", n + 1));
        }
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir(&dir).map_err(super::io_err("create directory", &dir))?;
        match OwnedNetns::create(NETNS_RUN_DIR, &name) {
            Ok(host) => Ok(Scratch {
                host: Some(host),
                dir,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(Error::Netns(e))
            }
        }
    }

    /// The host namespace.
    pub fn host(&self) -> &Netns {
        self.host.as_ref().expect("present until drop")
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A controller configuration with all state under the directory.
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig::under(&self.dir)
    }

    /// Runs `f` inside the host namespace with a controller over the directory's state.
    pub fn run<T: Send>(&self, f: impl FnOnce(&Controller) -> Result<T> + Send) -> Result<T> {
        let config = self.controller_config();
        self.host()
            .run(move || f(&Controller::new(config)?))
            .map_err(Error::Netns)?
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Sandboxes first: their namespaces are mounts under the directory.
        let _ = self.run(|c| {
            for s in c.sandboxes()? {
                if let Err(e) = s.clone().delete() {
                    tracing::warn!("scratch: deleting sandbox {}: {e}", s.container_id());
                    crate::netns::remove_mount(s.key());
                }
            }
            Ok(())
        });
        drop(self.host.take());
        // Whatever could not be deleted above is still mounted: unmount it, or the directory
        // cannot go.
        let netns_dir = self.controller_config().run_dir.join("netns");
        for entry in std::fs::read_dir(&netns_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            crate::netns::remove_mount(&entry.path());
        }
        crate::netns::remove_mount(&self.controller_config().run_dir.join("host-netns"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
