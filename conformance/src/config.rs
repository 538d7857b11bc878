//! Network configuration lists and runtime parameters, and the pure functions that turn them into
//! what one plugin receives: its stdin config and its environment.
//!
//! Configs stay `serde_json::Value`s on purpose: the harness must not share types with the code
//! under test, and must pass through whatever keys a plugin defines.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What is wrong with a configuration or a runtime parameter.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The bytes are not a JSON object.
    #[error("configuration list is not a JSON object: {0}")]
    NotJson(String),
    /// A key is missing or has the wrong type.
    #[error("configuration list: {0}")]
    Invalid(String),
    /// A version string that is not `MAJOR[.MINOR[.PATCH]]`.
    #[error("invalid version {0:?}")]
    Version(String),
    /// A container ID, network name or interface name that libcni would reject.
    #[error("invalid {what} {value:?}: {why}")]
    Name {
        /// What was being named.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Which rule it breaks.
        why: &'static str,
    },
}

/// A CNI spec version, compared numerically ("0.10.0" > "0.4.0").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CniVersion(pub u32, pub u32, pub u32);

impl CniVersion {
    /// Parses like libcni's `ParseVersion`: missing parts are 0, and "" means 0.1.0.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        if s.is_empty() {
            return Ok(CniVersion(0, 1, 0));
        }
        let bad = || ConfigError::Version(s.to_owned());
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let mut n = [0u32; 3];
        for (slot, part) in n.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| bad())?;
        }
        Ok(CniVersion(n[0], n[1], n[2]))
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One plugin's entry of a list: its raw object plus the two keys the runtime reads.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The `type` key: the executable's name in CNI_PATH.
    pub plugin_type: String,
    /// The `capabilities` map; only `true` entries receive runtimeConfig.
    pub capabilities: BTreeMap<String, bool>,
    /// The whole object as written in the list.
    pub conf: Map<String, Value>,
}

/// A network configuration list (`.conflist`), parsed the way libcni's `ConfListFromBytes` does.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// The network name, injected into every plugin's config.
    pub name: String,
    /// The list's `cniVersion`, injected into every plugin's config.
    pub cni_version: String,
    /// `disableCheck`: CHECK becomes a no-op.
    pub disable_check: bool,
    /// `disableGC`: GC becomes a no-op.
    pub disable_gc: bool,
    /// The plugins, in ADD order.
    pub plugins: Vec<PluginConfig>,
    /// The list exactly as given, kept for the result cache.
    pub bytes: Vec<u8>,
}

impl NetworkConfigList {
    /// Parses a conflist from JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        let mut list = Self::from_value(&value)?;
        list.bytes = bytes.to_vec();
        Ok(list)
    }

    /// Parses a conflist from a JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        let obj = value
            .as_object()
            .ok_or_else(|| ConfigError::NotJson("not an object".into()))?;
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("'name' is not a string".into())),
            None => return Err(invalid("no name".into())),
        };
        let cni_version = match obj.get("cniVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("'cniVersion' is not a string".into())),
            None => String::new(),
        };
        CniVersion::parse(&cni_version)?;
        let plugins = match obj.get("plugins") {
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid("no plugins in list".into()))
            }
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, p)| parse_plugin(i, p))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("'plugins' is not an array".into())),
            None => return Err(invalid("no 'plugins' key".into())),
        };
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check: flag(obj, "disableCheck")?,
            disable_gc: flag(obj, "disableGC")?,
            plugins,
            bytes: serde_json::to_vec(value).expect("a Value always serializes"),
        })
    }

    /// The list's version, parsed (validated when the list was parsed).
    pub fn version(&self) -> CniVersion {
        CniVersion::parse(&self.cni_version).unwrap_or(CniVersion(0, 1, 0))
    }
}

/// libcni accepts a bool or the strings "true"/"false" (any case) for these flags.
fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool, ConfigError> {
    match obj.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ConfigError::Invalid(format!("invalid {key} value {v}"))),
    }
}

fn parse_plugin(i: usize, p: &Value) -> Result<PluginConfig, ConfigError> {
    let invalid = |m: &str| ConfigError::Invalid(format!("plugin {i}: {m}"));
    let conf = p.as_object().ok_or_else(|| invalid("not an object"))?;
    let plugin_type = match conf.get("type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("missing 'type'")),
    };
    let capabilities = match conf.get("capabilities") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Bool(b) => Ok((k.clone(), *b)),
                _ => Err(invalid("'capabilities' values must be booleans")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("'capabilities' is not an object")),
    };
    Ok(PluginConfig {
        plugin_type,
        capabilities,
        conf: conf.clone(),
    })
}

/// What the runtime knows about one attachment: the container side of ADD, CHECK and DEL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConf {
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_NETNS: the path of the container's network namespace.
    pub netns: PathBuf,
    /// CNI_IFNAME: the interface name inside the container.
    pub ifname: String,
    /// CNI_ARGS, in order.
    pub args: Vec<(String, String)>,
    /// Capability arguments; each goes to the plugins that declare the capability.
    pub capability_args: Map<String, Value>,
}

impl RuntimeConf {
    /// Checks the names the way libcni does before it execs anything on ADD.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_id("container ID", &self.container_id)?;
        validate_ifname(&self.ifname)
    }
}

/// libcni's `ValidateContainerID` / `ValidateNetworkName`: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub fn validate_id(what: &'static str, value: &str) -> Result<(), ConfigError> {
    let err = |why| {
        Err(ConfigError::Name {
            what,
            value: value.to_owned(),
            why,
        })
    };
    let mut chars = value.chars();
    match chars.next() {
        None => return err("empty"),
        Some(c) if !c.is_ascii_alphanumeric() => return err("must start with a letter or digit"),
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return err("may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

/// libcni's `ValidateInterfaceName`: 1 to 15 bytes, not "." or "..", no '/', ':' or whitespace.
pub fn validate_ifname(value: &str) -> Result<(), ConfigError> {
    let err = |why| {
        Err(ConfigError::Name {
            what: "interface name",
            value: value.to_owned(),
            why,
        })
    };
    if value.is_empty() {
        return err("empty");
    }
    if value.len() > 15 {
        return err("longer than 15 bytes");
    }
    if value == "." || value == ".." {
        return err("'.' and '..' are not allowed");
    }
    if value
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return err("contains '/', ':' or whitespace");
    }
    Ok(())
}

/// The stdin config of plugin `index` of `list`, built as libcni's `buildOneConfig` does.
///
/// `name` and `cniVersion` are replaced by the list's; `prevResult` is set when given; and when
/// `rt` is given, `runtimeConfig` holds each capability the plugin declares `true` that the
/// runtime has an argument for (the key is left alone when there is none).
pub fn plugin_stdin(
    list: &NetworkConfigList,
    index: usize,
    prev_result: Option<&Value>,
    rt: Option<&RuntimeConf>,
) -> Map<String, Value> {
    let plugin = &list.plugins[index];
    let mut conf = plugin.conf.clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    if let Some(rt) = rt {
        let runtime_config: Map<String, Value> = plugin
            .capabilities
            .iter()
            .filter(|(_, &on)| on)
            .filter_map(|(cap, _)| Some((cap.clone(), rt.capability_args.get(cap)?.clone())))
            .collect();
        if !runtime_config.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
    }
    conf
}

/// A CNI command, as written in CNI_COMMAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach a container.
    Add,
    /// Verify an attachment.
    Check,
    /// Detach a container.
    Del,
    /// Remove everything not in the valid attachments (spec 1.1.0).
    Gc,
    /// Report whether ADD can succeed (spec 1.1.0).
    Status,
    /// Report the supported spec versions.
    Version,
}

impl Command {
    /// The CNI_COMMAND value.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Check => "CHECK",
            Command::Del => "DEL",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CNI_* environment of one call, as libcni builds it.
///
/// ADD, CHECK and DEL get all six variables (CNI_ARGS as `K=V;K=V`, possibly empty). GC and
/// STATUS get only CNI_COMMAND and CNI_PATH, which is all the spec asks for (libcni also sets the
/// other four to empty strings). VERSION gets libcni's placeholders for plugins built with an old
/// skel that insisted on CNI_NETNS, CNI_IFNAME and CNI_PATH.
pub fn plugin_env(
    command: Command,
    rt: Option<&RuntimeConf>,
    cni_path: &[PathBuf],
) -> Vec<(String, String)> {
    let var = |k: &str, v: String| (k.to_owned(), v);
    let mut env = vec![var("CNI_COMMAND", command.as_str().to_owned())];
    match (command, rt) {
        (Command::Add | Command::Check | Command::Del, rt) => {
            let rt = rt.cloned().unwrap_or_default();
            env.push(var("CNI_CONTAINERID", rt.container_id));
            env.push(var("CNI_NETNS", rt.netns.to_string_lossy().into_owned()));
            env.push(var("CNI_IFNAME", rt.ifname));
            env.push(var("CNI_ARGS", cni_args(&rt.args)));
            env.push(var("CNI_PATH", join_path(cni_path)));
        }
        (Command::Gc | Command::Status, _) => env.push(var("CNI_PATH", join_path(cni_path))),
        (Command::Version, _) => {
            for k in ["CNI_NETNS", "CNI_IFNAME", "CNI_PATH"] {
                env.push(var(k, "dummy".into()));
            }
        }
    }
    env
}

/// CNI_ARGS: `K=V` pairs joined by `;`.
pub fn cni_args(args: &[(String, String)]) -> String {
    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(";")
}

fn join_path(dirs: &[PathBuf]) -> String {
    let dirs: Vec<_> = dirs
        .iter()
        .map(|d| Path::new(d).to_string_lossy())
        .collect();
    dirs.join(":")
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
