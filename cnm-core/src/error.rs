//! The crate's error: every module's error lifted into one type, and the one place that decides
//! which CNI code each failure gets. The `match` in [`Error::code`] has no `_` arm, so a new
//! variant forces that decision.

use crate::cni::config::ConfigError;
use crate::cni::delegate::DelegateError;
use crate::cni::env::EnvError;
use crate::cni::error::{CniError, ErrorCode};
use crate::driver::bridge::BridgeError;
use crate::driver::host_device::HostDeviceError;
use crate::driver::macvlan::MacvlanError;
use crate::driver::null::NullError;
use crate::firewall::FirewallError;
use crate::ipam::{AllocError, IpamConfigError};
use crate::model::ModelError;
use crate::namespace::NamespaceError;
use crate::netlink::NetlinkError;
use crate::netns::NetnsError;
use crate::plugins::ipam::IpamPluginError;
use crate::portmap::PortMapError;
use crate::store::StoreError;

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
    /// The `ipam` section of the configuration.
    #[error(transparent)]
    IpamConfig(#[from] IpamConfigError),
    /// The store of networks, endpoints and addresses.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The `cnm-ipam` plugin's own checks.
    #[error(transparent)]
    IpamPlugin(#[from] IpamPluginError),
    /// The bridge driver.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// The null driver.
    #[error(transparent)]
    Null(#[from] NullError),
    /// The host-device driver.
    #[error(transparent)]
    HostDevice(#[from] HostDeviceError),
    /// The macvlan driver.
    #[error(transparent)]
    Macvlan(#[from] MacvlanError),
    /// cnm's nftables table.
    #[error("firewall: {0}")]
    Firewall(#[from] FirewallError),
    /// Published ports.
    #[error("port mapping: {0}")]
    PortMap(#[from] PortMapError),
    /// A network namespace the library made or opened (a sandbox, not `CNI_NETNS`).
    #[error("network namespace: {0}")]
    Netns(#[source] NetnsError),
    /// A kernel request the library made outside any driver.
    #[error(transparent)]
    Netlink(NetlinkError),
    /// The model (controller, networks, endpoints, sandboxes).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The namespace layer (`new_network`, `NetworkNamespace`).
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
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
            Error::ContainerNetns(e) => container_netns_code(e),
            Error::Delegate(e) => e.code(),
            Error::IpamConfig(e) => match e {
                IpamConfigError::Field { .. }
                | IpamConfigError::NoRanges
                | IpamConfigError::EmptySet { .. }
                | IpamConfigError::HostBits { .. }
                | IpamConfigError::TooSmall { .. }
                | IpamConfigError::OutsideSubnet { .. }
                | IpamConfigError::StartAfterEnd { .. }
                | IpamConfigError::Overlap { .. }
                | IpamConfigError::MixedFamilies { .. }
                | IpamConfigError::RouteFamily { .. }
                | IpamConfigError::DataDir { .. } => ErrorCode::InvalidConfig,
            },
            Error::Store(e) => match e {
                // busy_timeout (10 s) ran out behind other writers: transient by nature.
                StoreError::Sqlite { source, .. }
                    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        || source.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::DatabaseLocked) =>
                {
                    ErrorCode::TryAgainLater
                }
                StoreError::Dir { .. }
                | StoreError::Sqlite { .. }
                | StoreError::SchemaTooNew { .. }
                | StoreError::Corrupt { .. } => ErrorCode::Io,
                StoreError::NetworkConflict { .. }
                | StoreError::NetworkExists(_)
                | StoreError::SubnetTaken { .. } => ErrorCode::InvalidConfig,
                StoreError::ElementTaken { .. } => ErrorCode::PortInUse,
                StoreError::Alloc { source, .. } => match source {
                    // Not 11: an exhausted pool does not clear up by itself, and a runtime that
                    // retries blindly would hide a pool that is too small. Its own code lets
                    // a runtime or an operator tell it apart from a bug (100).
                    AllocError::Exhausted { .. } | AllocError::RequestedInUse { .. } => {
                        ErrorCode::AddressUnavailable
                    }
                    AllocError::RequestedOutside { .. }
                    | AllocError::RequestedPrefix { .. }
                    | AllocError::RequestedGateway { .. }
                    | AllocError::RequestedTwice { .. } => ErrorCode::InvalidConfig,
                },
                // A DEL removed the endpoint while its ADD ran: the container is gone.
                StoreError::EndpointMissing(_) => ErrorCode::UnknownContainer,
            },
            Error::Bridge(e) => bridge_code(e),
            Error::Null(e) => match e {
                NullError::Netlink(e) => netlink_code(e),
                NullError::NoLink { .. } => ErrorCode::InvalidEnvironment,
                NullError::Down { .. } => ErrorCode::CheckFailed,
            },
            Error::HostDevice(e) => match e {
                HostDeviceError::Netlink(e) => netlink_code(e),
                HostDeviceError::NotFound { .. }
                | HostDeviceError::Taken { .. }
                | HostDeviceError::NamedTwice { .. }
                | HostDeviceError::DefaultRoute { .. }
                | HostDeviceError::Loopback { .. } => ErrorCode::InvalidConfig,
                HostDeviceError::IfNameTaken { .. } => ErrorCode::InvalidEnvironment,
                HostDeviceError::Check(_) => ErrorCode::CheckFailed,
            },
            Error::Macvlan(e) => match e {
                MacvlanError::Netlink(e) => netlink_code(e),
                MacvlanError::NoMaster { .. }
                | MacvlanError::NoDefaultRoute
                | MacvlanError::MtuAboveMaster { .. }
                | MacvlanError::MasterInUse { .. } => ErrorCode::InvalidConfig,
                MacvlanError::Check(_) => ErrorCode::CheckFailed,
            },
            Error::IpamPlugin(e) => match e {
                IpamPluginError::NoIpamSection => ErrorCode::InvalidConfig,
                IpamPluginError::ArgsIp { .. } => ErrorCode::InvalidEnvironment,
                IpamPluginError::NotReserved { .. } | IpamPluginError::Mismatch { .. } => {
                    ErrorCode::CheckFailed
                }
                IpamPluginError::Unavailable(_) => ErrorCode::NotAvailable,
            },
            Error::Firewall(e) => match e {
                FirewallError::Exists { .. }
                | FirewallError::NotFound { .. }
                | FirewallError::Kernel { .. }
                | FirewallError::Io { .. } => ErrorCode::Io,
                FirewallError::Netns(e) => other_netns_code(e),
                // A bridge name comes from the network configuration.
                FirewallError::InvalidName { .. } => ErrorCode::InvalidConfig,
            },
            Error::Netns(e) => other_netns_code(e),
            Error::Netlink(e) => netlink_code(e),
            Error::Model(e) => match e {
                ModelError::NetworkExists(_)
                | ModelError::NoNetwork(_)
                | ModelError::Undrivable { .. }
                | ModelError::NetworkInUse { .. }
                | ModelError::NotJoined(_)
                | ModelError::AlreadyJoined { .. }
                | ModelError::SandboxExists(_)
                | ModelError::HostSandboxOnly(_)
                | ModelError::NoInterfaceName(_) => ErrorCode::InvalidConfig,
                ModelError::NoFreeSubnet => ErrorCode::AddressUnavailable,
                ModelError::Io { .. } => ErrorCode::Io,
            },
            Error::PortMap(e) => match e {
                PortMapError::Sysctl { .. } => ErrorCode::Io,
                PortMapError::Missing(_) => ErrorCode::CheckFailed,
            },
            Error::Namespace(e) => match e {
                NamespaceError::Netns(e) => other_netns_code(e),
                NamespaceError::Netlink { source, .. } => netlink_code(source),
                NamespaceError::Configure { source, .. } => bridge_code(source),
                // The caller's mistakes: what it asked for cannot be done as asked.
                NamespaceError::NoInterface { .. }
                | NamespaceError::NameTaken { .. }
                | NamespaceError::Gateway { .. }
                | NamespaceError::UnknownDriver(_)
                | NamespaceError::Subnet { .. }
                | NamespaceError::Mtu(_)
                | NamespaceError::ContainerId(_)
                | NamespaceError::AlreadyLinked { .. }
                | NamespaceError::InUse { .. } => ErrorCode::InvalidConfig,
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

/// The bridge driver's failures: the configuration's fault, a race, I/O, or CHECK.
fn bridge_code(e: &BridgeError) -> ErrorCode {
    match e {
        BridgeError::Netlink(e) => netlink_code(e),
        BridgeError::NotABridge { .. } | BridgeError::AddressConflict { .. } => {
            ErrorCode::InvalidConfig
        }
        // Another process removed it between two requests: trying again can succeed.
        BridgeError::Vanished { .. } => ErrorCode::TryAgainLater,
        BridgeError::Sysctl { .. } => ErrorCode::Io,
        BridgeError::Check(_) => ErrorCode::CheckFailed,
    }
}

/// Kernel requests fail as I/O, except when the namespace they needed is the problem.
fn netlink_code(e: &NetlinkError) -> ErrorCode {
    match e {
        NetlinkError::NotFound { .. }
        | NetlinkError::Exists { .. }
        | NetlinkError::Kernel { .. }
        | NetlinkError::Io { .. }
        | NetlinkError::Decode { .. } => ErrorCode::Io,
        NetlinkError::Netns(e) => container_netns_code(e),
    }
}

/// The container's namespace (`CNI_NETNS`) failed: a missing one is SPEC code 3 (the container
/// does not exist; the runtime need not clean up), something else mounted there a bad
/// environment.
fn container_netns_code(e: &NetnsError) -> ErrorCode {
    match e {
        NetnsError::NotFound { .. } => ErrorCode::UnknownContainer,
        NetnsError::NotNetns { .. } => ErrorCode::InvalidEnvironment,
        NetnsError::Io { .. } => ErrorCode::Io,
        NetnsError::Panicked { .. } => ErrorCode::Internal,
    }
}

/// Any other namespace (the host's, one cnm made) failed: I/O, unless code inside it panicked.
fn other_netns_code(e: &NetnsError) -> ErrorCode {
    match e {
        NetnsError::Panicked { .. } => ErrorCode::Internal,
        NetnsError::NotFound { .. } | NetnsError::NotNetns { .. } | NetnsError::Io { .. } => {
            ErrorCode::Io
        }
    }
}
