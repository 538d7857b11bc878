//! The bridge driver's configuration, validated into a [`BridgePlan`] before any side effect.
//!
//! Keys of the reference `bridge` plugin keep their meaning (`bridge`, `isGateway`,
//! `isDefaultGateway`, `forceAddress`, `ipMasq`, `mtu`, `hairpinMode`, `promiscMode`), so a conflist
//! switches by changing `type`. libnetwork's bridge options that mean something here are added:
//! `enableIcc` (inter-container communication, default on), `internal` (no default route, no
//! masquerade, no forwarding off the bridge) and `isolation` (drop traffic between different cnm
//! networks, default on). Keys the reference has but cnm does not implement yet (`vlan`,
//! `macspoofchk`, ...) are refused with CNI code 2 when set, never silently ignored.

use serde::Deserialize;
use serde_json::Value;

use crate::cni::config::{ConfigError, NetConf};
use crate::cni::env::IfName;

/// The reference bridge's keys plus libnetwork's, as written in the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeConfig {
    /// Bridge device name (default `cni0`, as the reference plugin).
    #[serde(default)]
    pub bridge: Option<String>,
    /// Give the bridge the gateway address of each range.
    #[serde(default)]
    pub is_gateway: bool,
    /// Also make the gateway the container's default route (implies `isGateway`).
    #[serde(default)]
    pub is_default_gateway: bool,
    /// Replace an existing bridge address of the same family instead of failing.
    #[serde(default)]
    pub force_address: bool,
    /// MTU of the veth pair (and of a bridge cnm creates).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Hairpin mode on the host veth: a container can reach itself through a published port.
    #[serde(default)]
    pub hairpin_mode: bool,
    /// Put the bridge in promiscuous mode.
    #[serde(default)]
    pub promisc_mode: bool,
    /// libnetwork `enable_icc`: containers on this bridge may talk to each other.
    #[serde(default, alias = "enable_icc")]
    pub enable_icc: Option<bool>,
    /// libnetwork `internal`: no route or masquerade off the bridge.
    #[serde(default)]
    pub internal: bool,
    /// Drop traffic between this and other cnm networks (default on).
    #[serde(default)]
    pub isolation: Option<bool>,
    /// Directory of cnm's store for this network (default: `ipam.dataDir`, then
    /// `/var/lib/cni/cnm`).
    #[serde(default)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Reference keys not implemented yet: refused when set.
    #[serde(default)]
    pub vlan: Option<Value>,
    #[serde(default)]
    pub vlan_trunk: Option<Value>,
    #[serde(default)]
    pub macspoofchk: Option<bool>,
    #[serde(default)]
    pub enabledad: Option<bool>,
}

/// Whether forwarded traffic off the bridge is masqueraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masquerade {
    /// `ipMasq: true` (and not internal).
    On,
    /// No masquerade.
    Off,
}

/// Who may talk across the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Containers may reach each other (`enableIcc`, the default).
    Icc,
    /// Bridge ports are isolated from each other; only the gateway is reachable.
    NoIcc,
}

/// A validated bridge network: everything the driver needs, nothing left to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    /// Bridge device name.
    pub bridge: IfName,
    /// Assign gateway addresses to the bridge.
    pub is_gateway: bool,
    /// Route 0.0.0.0/0 (and ::/0) via the gateway in the container.
    pub default_route: bool,
    /// Replace a conflicting bridge address.
    pub force_address: bool,
    /// Veth MTU; `None` leaves the kernel default.
    pub mtu: Option<u32>,
    /// Hairpin on host veths.
    pub hairpin: bool,
    /// Promiscuous bridge.
    pub promisc: bool,
    /// Masquerade of traffic leaving the network.
    pub masquerade: Masquerade,
    /// Container-to-container traffic.
    pub reach: Reach,
    /// No forwarding off the bridge.
    pub internal: bool,
    /// Isolation from other cnm networks.
    pub isolated: bool,
}

/// Linux accepts MTUs from 68 (IPv4's minimum) to 65535 on veth and bridge devices.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

fn unsupported(field: &str, why: &str) -> ConfigError {
    ConfigError::Unsupported {
        field: field.into(),
        why: why.into(),
    }
}

impl BridgePlan {
    /// Validates the configuration.
    pub fn new(conf: &NetConf<BridgeConfig>) -> Result<Self, ConfigError> {
        let c = &conf.plugin;
        let name = c.bridge.as_deref().unwrap_or("cni0");
        let bridge = IfName::new(name).map_err(|e| ConfigError::invalid("bridge", e))?;
        if let Some(mtu) = c.mtu {
            if !MTU_RANGE.contains(&mtu) {
                return Err(ConfigError::invalid(
                    "mtu",
                    format!(
                        "{mtu} is out of range; Linux accepts {} to {}",
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                ));
            }
        }
        if c.vlan
            .as_ref()
            .is_some_and(|v| !v.is_null() && v != &Value::from(0))
        {
            return Err(unsupported(
                "vlan",
                "VLAN tagging is not implemented by cnm-bridge yet",
            ));
        }
        if c.vlan_trunk.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported(
                "vlanTrunk",
                "VLAN trunks are not implemented by cnm-bridge yet",
            ));
        }
        if c.macspoofchk == Some(true) {
            return Err(unsupported(
                "macspoofchk",
                "MAC spoof checking is not implemented by cnm-bridge yet",
            ));
        }
        if let Some(dir) = &c.data_dir {
            if !dir.is_absolute()
                || dir
                    .components()
                    .any(|p| p == std::path::Component::ParentDir)
            {
                return Err(ConfigError::invalid(
                    "dataDir",
                    format!(
                        "{} must be an absolute path without \"..\", such as /var/lib/cni/cnm",
                        dir.display()
                    ),
                ));
            }
        }
        if c.isolation == Some(false) {
            return Err(unsupported(
                "isolation",
                "turning isolation between cnm networks off is not implemented yet",
            ));
        }
        let internal = c.internal;
        let default_route = c.is_default_gateway && !internal;
        Ok(BridgePlan {
            bridge,
            is_gateway: c.is_gateway || c.is_default_gateway,
            default_route,
            force_address: c.force_address,
            mtu: c.mtu,
            hairpin: c.hairpin_mode,
            promisc: c.promisc_mode,
            masquerade: if conf.ip_masq && !internal {
                Masquerade::On
            } else {
                Masquerade::Off
            },
            reach: if c.enable_icc.unwrap_or(true) {
                Reach::Icc
            } else {
                Reach::NoIcc
            },
            internal,
            isolated: c.isolation.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(extra: Value) -> Result<BridgePlan, ConfigError> {
        let mut v = json!({"cniVersion": "1.0.0", "name": "n", "type": "cnm-bridge"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let conf = NetConf::<BridgeConfig>::parse(&serde_json::to_vec(&v).unwrap())?;
        BridgePlan::new(&conf)
    }

    #[test]
    fn defaults_match_the_reference() {
        let p = plan(json!({})).unwrap();
        assert_eq!(p.bridge.as_str(), "cni0");
        assert!(!p.is_gateway && !p.default_route);
        assert_eq!(p.masquerade, Masquerade::Off);
        assert_eq!(p.reach, Reach::Icc);
        assert!(p.isolated);
    }

    #[test]
    fn options() {
        let p = plan(
            json!({"bridge": "br1", "isDefaultGateway": true, "ipMasq": true,
            "mtu": 1400, "enable_icc": false, "hairpinMode": true}),
        )
        .unwrap();
        assert!(p.is_gateway && p.default_route && p.hairpin);
        assert_eq!(
            (p.masquerade, p.reach, p.mtu),
            (Masquerade::On, Reach::NoIcc, Some(1400))
        );
        let p = plan(json!({"isDefaultGateway": true, "ipMasq": true, "internal": true})).unwrap();
        assert!(!p.default_route);
        assert_eq!(p.masquerade, Masquerade::Off);
    }

    #[test]
    fn refuses_what_linux_or_cnm_cannot_do() {
        for (extra, needle) in [
            (json!({"bridge": "a-name-longer-than-15"}), "field bridge"),
            (json!({"bridge": "br/0"}), "field bridge"),
            (json!({"bridge": ""}), "field bridge"),
            (json!({"mtu": 67}), "out of range"),
            (json!({"mtu": 65536}), "out of range"),
            (json!({"mtu": -1}), "field mtu"),
            (json!({"vlan": 100}), "vlan is not supported"),
            (json!({"macspoofchk": true}), "macspoofchk is not supported"),
        ] {
            let e = plan(extra.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        assert!(plan(json!({"vlan": 0, "macspoofchk": false})).is_ok());
    }
}
