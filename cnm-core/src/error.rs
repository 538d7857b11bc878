//! The crate's error: every module's error lifted into one type, and the one place that decides
//! which CNI code each failure gets. The `match` in [`Error::code`] has no `_` arm, so a new
//! variant forces that decision.

use crate::cni::config::ConfigError;
use crate::cni::delegate::DelegateError;
use crate::cni::env::EnvError;
use crate::cni::error::{CniError, ErrorCode};
use crate::firewall::FirewallError;
use crate::netns::NetnsError;

/// Any failure of a cnm operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `CNI_*` environment.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The network configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The container's network namespace (`CNI_NETNS`).
    #[error("container network namespace (CNI_NETNS): {0}")]
    ContainerNetns(#[source] NetnsError),
    /// Another plugin this one delegated to.
    #[error(transparent)]
    Delegate(#[from] DelegateError),
    /// cnm's nftables table.
    #[error("firewall: {0}")]
    Firewall(#[from] FirewallError),
    /// This plugin does not do that (yet).
    #[error("{plugin}: {what} is not implemented")]
    NotImplemented {
        plugin: &'static str,
        what: &'static str,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The CNI error code a runtime sees for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Env(_) => ErrorCode::InvalidEnvironment,
            Error::Config(e) => match e {
                ConfigError::Read(_) => ErrorCode::Io,
                ConfigError::TooLarge | ConfigError::Syntax(_) | ConfigError::NotObject(_) => {
                    ErrorCode::Decode
                }
                ConfigError::Version(_) | ConfigError::CommandNeedsVersion { .. } => {
                    ErrorCode::IncompatibleVersion
                }
                ConfigError::Unsupported { .. } => ErrorCode::UnsupportedField,
                ConfigError::NoVersion
                | ConfigError::Field { .. }
                | ConfigError::Invalid { .. }
                | ConfigError::PrevResult(_) => ErrorCode::InvalidConfig,
            },
            Error::ContainerNetns(e) => match e {
                // SPEC code 3: the container does not exist; the runtime need not clean up.
                NetnsError::NotFound { .. } => ErrorCode::UnknownContainer,
                NetnsError::NotNetns { .. } => ErrorCode::InvalidEnvironment,
                NetnsError::Io { .. } => ErrorCode::Io,
                NetnsError::Panicked { .. } => ErrorCode::Internal,
            },
            Error::Delegate(e) => e.code(),
            Error::Firewall(e) => match e {
                FirewallError::Exists { .. }
                | FirewallError::NotFound { .. }
                | FirewallError::Kernel { .. }
                | FirewallError::Io { .. } => ErrorCode::Io,
                FirewallError::Netns(NetnsError::Panicked { .. }) => ErrorCode::Internal,
                FirewallError::Netns(
                    NetnsError::NotFound { .. }
                    | NetnsError::NotNetns { .. }
                    | NetnsError::Io { .. },
                ) => ErrorCode::Io,
                // A bridge name comes from the network configuration.
                FirewallError::InvalidName { .. } => ErrorCode::InvalidConfig,
            },
            Error::NotImplemented { .. } => ErrorCode::NotImplemented,
        }
    }

    /// The error as a runtime sees it: the message, and the causes below it as details.
    pub fn to_cni(&self) -> CniError {
        let msg = self.to_string();
        let mut details = Vec::new();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            if !msg.contains(&text) && !details.contains(&text) {
                details.push(text);
            }
            source = s.source();
        }
        if let Error::Delegate(DelegateError::Failed { error, .. }) = self {
            if !error.details.is_empty() {
                details.push(error.details.clone());
            }
        }
        CniError::new(self.code(), msg).with_details(details.join(": "))
    }
}
