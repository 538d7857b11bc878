//! The crate's error: each variant says what the runtime was doing.

use std::io;
use std::path::PathBuf;

use cnm_core::netns::NetnsError;

use crate::config::{Command, ConfigError};
use crate::exec::{ExecError, FindError, PluginError};

/// Anything that can go wrong while running a plugin the way a runtime does.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration or a runtime parameter is invalid; nothing was executed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plugin binary could not be found.
    #[error(transparent)]
    Find(#[from] FindError),
    /// The plugin could not be run, or ran and failed.
    #[error("plugin {plugin} failed ({command}): {source}")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The command it was running.
        command: Command,
        /// What went wrong.
        #[source]
        source: ExecError,
    },
    /// The plugin exited 0 but its output breaks the spec.
    #[error("plugin {plugin} ({command}) printed an invalid result: {reason}")]
    BadOutput {
        /// The plugin type.
        plugin: String,
        /// The command it was running.
        command: Command,
        /// What is wrong with the output.
        reason: String,
    },
    /// The command does not exist in the list's spec version (CHECK before 0.4.0).
    #[error("configuration version {version:?} does not support {command}")]
    Unsupported {
        /// The command asked for.
        command: Command,
        /// The list's cniVersion.
        version: String,
    },
    /// Reading or writing the result cache failed.
    #[error("result cache in {dir}: {source}")]
    Cache {
        /// The cache directory.
        dir: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Opening or creating a network namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Any other system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// GC kept going past failures; these are all of them.
    #[error("{} errors: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
}

impl Error {
    /// The plugin's CNI error, when a plugin ran and failed.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            Error::Plugin { source, .. } => source.plugin_error(),
            _ => None,
        }
    }
}
