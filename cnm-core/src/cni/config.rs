//! The network configuration on stdin, parsed once into typed values before any side effect.
//!
//! The common keys of SPEC §"Network configuration" are parsed here; each plugin's own keys are
//! parsed from the same JSON object into its `Config` type. Unknown keys are accepted (the spec
//! lets plugins ignore them, and drop-in configs for the reference plugins carry keys that cnm
//! does not use). Errors name the field by its JSON path.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::env::{ContainerId, IfName};
use super::result::{CniResult, Dns, ResultError};
use super::version::{SpecVersion, UnsupportedVersion};

/// The most stdin a plugin reads; a real config with a 1,000-port mapping list is ~100 KiB.
pub const MAX_STDIN: u64 = 4 << 20;

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// stdin could not be read.
    #[error("reading the network configuration from stdin: {0}")]
    Read(#[source] std::io::Error),
    /// stdin is larger than [`MAX_STDIN`].
    #[error("the network configuration on stdin is larger than {} MiB", MAX_STDIN >> 20)]
    TooLarge,
    /// stdin is not JSON (syntax, encoding, nesting deeper than 128).
    #[error("the network configuration is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// stdin is JSON but not an object.
    #[error("the network configuration must be a JSON object, not {0}")]
    NotObject(&'static str),
    /// `cniVersion` is missing or not a string.
    #[error("the network configuration has no \"cniVersion\" string; set it to one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0")]
    NoVersion,
    /// `cniVersion` is not supported.
    #[error(transparent)]
    Version(#[from] UnsupportedVersion),
    /// The command does not exist in the config's version.
    #[error("{command} needs cniVersion {needs} or later, but the configuration has {has}")]
    CommandNeedsVersion {
        command: &'static str,
        needs: SpecVersion,
        has: SpecVersion,
    },
    /// A field has the wrong type or value.
    #[error("network configuration field {path}: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A field's value is well-formed but not acceptable.
    #[error("network configuration field {field}: {why}")]
    Invalid { field: String, why: String },
    /// A field that this plugin does not support was set.
    #[error("network configuration field {field} is not supported: {why}")]
    Unsupported { field: String, why: String },
    /// `prevResult` does not match the config's version.
    #[error(transparent)]
    PrevResult(#[from] ResultError),
}

impl ConfigError {
    /// A field error for `field` with reason `why`.
    pub fn invalid(field: impl Into<String>, why: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            why: why.to_string(),
        }
    }
}

/// Reads stdin up to [`MAX_STDIN`] bytes.
pub fn read_stdin(input: &mut dyn Read) -> Result<Vec<u8>, ConfigError> {
    let mut buf = Vec::new();
    input
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(ConfigError::Read)?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(ConfigError::TooLarge);
    }
    Ok(buf)
}

/// A network name: `^[A-Za-z0-9][A-Za-z0-9_.-]*$` (SPEC), at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkName(String);

impl NetworkName {
    /// Validates a network name.
    pub fn new(s: &str) -> Result<Self, ConfigError> {
        let mut chars = s.chars();
        let ok = s.len() <= 255
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(NetworkName(s.to_owned()))
        } else {
            Err(ConfigError::invalid(
                "name",
                format!("{s:?} is not a valid network name: it must start with a letter or digit and continue with letters, digits, '_', '.' or '-'"),
            ))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `ipam` section: its `type` and the whole object, which the IPAM (in-process or delegated)
/// parses itself.
#[derive(Debug, Clone, PartialEq)]
pub struct IpamConf {
    /// The IPAM plugin's name (`cnm-ipam`, `host-local`, ...).
    pub plugin_type: String,
    /// The whole `ipam` object.
    pub raw: Map<String, Value>,
}

impl<'de> Deserialize<'de> for IpamConf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Map::deserialize(d)?;
        let plugin_type = match raw.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            _ => return Err(D::Error::custom("\"type\" must name the IPAM plugin")),
        };
        Ok(IpamConf { plugin_type, raw })
    }
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(D::Error::custom(format!(
                "unknown protocol {s:?}; expected tcp, udp or sctp"
            ))),
        }
    }
}

/// One entry of the `portMappings` capability (CONVENTIONS.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the host, 1–65535.
    #[serde(deserialize_with = "port")]
    pub host_port: u16,
    /// Port in the container, 1–65535.
    #[serde(deserialize_with = "port")]
    pub container_port: u16,
    /// tcp (default), udp or sctp.
    #[serde(default = "tcp")]
    pub protocol: Protocol,
    /// Host address to publish on; absent or "" means every host address.
    #[serde(default, rename = "hostIP", deserialize_with = "optional_ip")]
    pub host_ip: Option<IpAddr>,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    match u16::try_from(n) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(D::Error::custom(format!(
            "port {n} is out of range; ports are 1 to 65535"
        ))),
    }
}

fn optional_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{s:?} is not an IP address"))),
    }
}

/// An address requested through the `ips` capability or `CNI_ARGS` `IP=`: `10.1.0.7` or
/// `10.1.0.7/24` (the prefix, if any, must match the range's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedIp {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, if one was given.
    pub prefix: Option<u8>,
}

impl std::str::FromStr for RequestedIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address (with an optional /prefix)");
        if s.contains('/') {
            let net: ipnet::IpNet = s.parse().map_err(|_| bad())?;
            Ok(RequestedIp {
                addr: net.addr(),
                prefix: Some(net.prefix_len()),
            })
        } else {
            Ok(RequestedIp {
                addr: s.parse().map_err(|_| bad())?,
                prefix: None,
            })
        }
    }
}

impl<'de> Deserialize<'de> for RequestedIp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// `runtimeConfig`: the capability arguments the runtime passed (CONVENTIONS.md).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// `portMappings` capability.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// `ips` capability.
    #[serde(default)]
    pub ips: Vec<RequestedIp>,
    /// `mac` capability.
    #[serde(default)]
    pub mac: Option<String>,
    /// `ipRanges` capability, parsed by the IPAM.
    #[serde(default)]
    pub ip_ranges: Option<Value>,
    /// `dns` capability.
    #[serde(default)]
    pub dns: Option<Dns>,
}

/// One attachment that GC must keep (SPEC 1.1.0 `cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct GcAttachment {
    /// Container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
}

impl GcAttachment {
    /// The attachments as validated keys; one with an invalid ID or name cannot match a stored
    /// endpoint, so it is dropped.
    pub fn keys(valid: &[GcAttachment]) -> Vec<(ContainerId, IfName)> {
        valid
            .iter()
            .filter_map(|a| {
                Some((
                    ContainerId::new(&a.container_id).ok()?,
                    IfName::new(&a.ifname).ok()?,
                ))
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Common {
    name: String,
    #[serde(rename = "type")]
    plugin_type: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    ipam: Option<IpamConf>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    capabilities: BTreeMap<String, bool>,
    #[serde(default)]
    runtime_config: Option<RuntimeConfig>,
    #[serde(default)]
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    valid_attachments: Option<Vec<GcAttachment>>,
    // The name libcni sent during the 1.1.0 release candidates; libcni sends both.
    #[serde(rename = "cni.dev/attachments", default)]
    attachments: Option<Vec<GcAttachment>>,
}

/// A parsed network configuration with the plugin's own keys as `P`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf<P> {
    /// `cniVersion`: the version of the result and error output.
    pub cni_version: SpecVersion,
    /// `name`.
    pub name: NetworkName,
    /// `type`: the plugin's file name.
    pub plugin_type: String,
    /// `args`: runtime-supplied data, passed on untouched.
    pub args: Option<Value>,
    /// `ipMasq`.
    pub ip_masq: bool,
    /// `ipam`.
    pub ipam: Option<IpamConf>,
    /// `dns`.
    pub dns: Option<Dns>,
    /// `capabilities` the plugin declared in the config.
    pub capabilities: BTreeMap<String, bool>,
    /// `runtimeConfig`.
    pub runtime_config: RuntimeConfig,
    /// `prevResult`, parsed in `cniVersion`'s format.
    pub prev_result: Option<CniResult>,
    /// GC: the attachments to keep (either key; valid-attachments wins).
    pub valid_attachments: Option<Vec<GcAttachment>>,
    /// The plugin's own keys.
    pub plugin: P,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses stdin as JSON and checks that it is an object with a supported `cniVersion`.
pub fn parse_object(stdin: &[u8]) -> Result<(SpecVersion, Value), ConfigError> {
    let value: Value = serde_json::from_slice(stdin).map_err(ConfigError::Syntax)?;
    if !value.is_object() {
        return Err(ConfigError::NotObject(kind(&value)));
    }
    let version = match value.get("cniVersion") {
        Some(Value::String(s)) => s.parse::<SpecVersion>()?,
        _ => return Err(ConfigError::NoVersion),
    };
    Ok((version, value))
}

/// The `cniVersion` of stdin if it is readable, for the version of an error's output.
pub fn peek_version(stdin: &[u8]) -> Option<SpecVersion> {
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "cniVersion")]
        v: String,
    }
    serde_json::from_slice::<V>(stdin).ok()?.v.parse().ok()
}

fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, ConfigError> {
    // The value is already parsed, so `T` reads from a reference; paths name the failing field.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Field {
            path: if path == "." {
                "(top level)".into()
            } else {
                path
            },
            source: e.into_inner(),
        }
    })
}

impl<P: DeserializeOwned> NetConf<P> {
    /// Parses a whole network configuration.
    pub fn parse(stdin: &[u8]) -> Result<Self, ConfigError> {
        let (cni_version, value) = parse_object(stdin)?;
        let common: Common = typed(&value)?;
        let plugin: P = typed(&value)?;
        let name = NetworkName::new(&common.name)?;
        let prev_result = common
            .prev_result
            .filter(|v| !v.is_null())
            .map(|v| CniResult::from_json(cni_version, v, "prevResult"))
            .transpose()?;
        Ok(NetConf {
            cni_version,
            name,
            plugin_type: common.plugin_type,
            args: common.args,
            ip_masq: common.ip_masq,
            ipam: common.ipam,
            dns: common.dns,
            capabilities: common.capabilities,
            runtime_config: common.runtime_config.unwrap_or_default(),
            prev_result,
            valid_attachments: common.valid_attachments.or(common.attachments),
            plugin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Bridge {
        #[serde(default)]
        bridge: Option<String>,
        #[serde(default)]
        mtu: Option<u32>,
    }

    fn parse(v: Value) -> Result<NetConf<Bridge>, ConfigError> {
        NetConf::parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn full_config() {
        let c = parse(json!({
            "cniVersion": "1.0.0", "name": "net1", "type": "cnm-bridge", "bridge": "br0",
            "ipMasq": true, "mtu": 1400, "futureKey": {"x": 1},
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "TCP"},
                {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
                {"hostPort": 9, "containerPort": 9, "hostIP": ""}],
                "ips": ["10.1.0.9/24", "fd00::9"], "unknownCap": 1},
            "prevResult": {"ips": [{"address": "10.1.0.9/24"}]}
        }))
        .unwrap();
        assert_eq!(c.cni_version, SpecVersion::V1_0_0);
        assert_eq!(
            c.plugin,
            Bridge {
                bridge: Some("br0".into()),
                mtu: Some(1400)
            }
        );
        assert_eq!(c.ipam.as_ref().unwrap().plugin_type, "host-local");
        let pm = &c.runtime_config.port_mappings;
        assert_eq!(pm[0].protocol, Protocol::Tcp);
        assert_eq!(pm[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(pm[2].host_ip, None);
        assert_eq!(c.runtime_config.ips[0].prefix, Some(24));
        assert_eq!(c.runtime_config.ips[1].prefix, None);
        assert_eq!(c.prev_result.unwrap().ips.len(), 1);
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "t"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert!(err(with("mtu", json!("big"))).contains("field mtu"));
        assert!(err(with("ipam", json!({"subnet": "x"}))).contains("field ipam"));
        let pm = |m: Value| with("runtimeConfig", json!({"portMappings": m}));
        let e = err(pm(json!([{"hostPort": 0, "containerPort": 80}])));
        assert!(
            e.contains("runtimeConfig.portMappings[0].hostPort") && e.contains("1 to 65535"),
            "{e}"
        );
        let e = err(pm(json!([{"hostPort": 80, "containerPort": 70000}])));
        assert!(e.contains("portMappings[0].containerPort"), "{e}");
        let e = err(pm(json!([{"hostPort": 80, "containerPort": -1}])));
        assert!(e.contains("out of range"), "{e}");
        let e = err(pm(
            json!([{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]),
        ));
        assert!(e.contains("unknown protocol"), "{e}");
        let e = err(pm(
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]),
        ));
        assert!(e.contains("hostIP") && e.contains("not an IP"), "{e}");
        let e = err(pm(json!({"hostPort": 80})));
        assert!(e.contains("portMappings"), "{e}");
        assert!(err(with("name", json!("-bad"))).contains("not a valid network name"));
        assert!(err(with("name", json!(""))).contains("not a valid network name"));
        let e = err(json!({"cniVersion": "1.0.0", "type": "t"}));
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn version_and_shape_errors() {
        assert!(matches!(
            parse(json!([1])),
            Err(ConfigError::NotObject("an array"))
        ));
        assert!(matches!(
            parse(json!({"name": "n"})),
            Err(ConfigError::NoVersion)
        ));
        assert!(matches!(
            parse(json!({"cniVersion": 1})),
            Err(ConfigError::NoVersion)
        ));
        assert!(matches!(
            parse(json!({"cniVersion": "0.2.0", "name": "n", "type": "t"})),
            Err(ConfigError::Version(_))
        ));
        assert!(matches!(
            NetConf::<Bridge>::parse(b"{"),
            Err(ConfigError::Syntax(_))
        ));
        assert!(matches!(
            NetConf::<Bridge>::parse(b"\xff\xfe"),
            Err(ConfigError::Syntax(_))
        ));
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(matches!(
            NetConf::<Bridge>::parse(deep.as_bytes()),
            Err(ConfigError::Syntax(_))
        ));
        let bad_prev = json!({"cniVersion": "0.4.0", "name": "n", "type": "t",
            "prevResult": {"ips": [{"address": "10.0.0.1/24"}]}});
        let e = err(bad_prev);
        assert!(e.contains("prevResult") && e.contains("version"), "{e}");
    }

    #[test]
    fn gc_attachments_under_either_key() {
        let c = parse(json!({"cniVersion": "1.1.0", "name": "n", "type": "t",
            "cni.dev/attachments": [{"containerID": "a", "ifname": "eth0"}]}))
        .unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "a");
        let c = parse(json!({"cniVersion": "1.1.0", "name": "n", "type": "t",
            "cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth0"}],
            "cni.dev/attachments": [{"containerID": "a", "ifname": "eth0"}]}))
        .unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "b");
    }

    #[test]
    fn stdin_limit() {
        let big = vec![b' '; (MAX_STDIN + 10) as usize];
        assert!(matches!(
            read_stdin(&mut &big[..]),
            Err(ConfigError::TooLarge)
        ));
        assert_eq!(read_stdin(&mut &b"{}"[..]).unwrap(), b"{}");
    }
}
