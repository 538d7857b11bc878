//! The request a runtime makes through the `CNI_*` environment, parsed into one typed value.
//!
//! Which variables each command requires follows SPEC §"Parameters" and libcni's skel: ADD and
//! CHECK need `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH`; DEL the same but
//! `CNI_NETNS` is optional (DEL must work after the namespace is gone); STATUS and GC need
//! `CNI_PATH`; VERSION needs nothing. An empty variable counts as unset, as in libcni.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// What is wrong with the environment; every variant maps to CNI code 4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `CNI_COMMAND` is unset.
    #[error("CNI_COMMAND is not set; expected one of ADD, DEL, CHECK, VERSION, STATUS, GC")]
    NoCommand,
    /// `CNI_COMMAND` names no command.
    #[error("CNI_COMMAND {0:?} is not a CNI command; expected one of ADD, DEL, CHECK, VERSION, STATUS, GC")]
    UnknownCommand(String),
    /// Required variables are unset.
    #[error("{} required for {command} but not set", list(.missing))]
    Missing {
        command: &'static str,
        missing: Vec<&'static str>,
    },
    /// A variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// `CNI_CONTAINERID` has characters the spec does not allow.
    #[error("CNI_CONTAINERID {0:?} is not a valid container ID: it must start with a letter or digit, continue with letters, digits, '_', '.' or '-', and be at most 255 bytes")]
    ContainerId(String),
    /// `CNI_IFNAME` is a name Linux would refuse.
    #[error("CNI_IFNAME {name:?} is not a valid interface name: {why}")]
    IfName { name: String, why: &'static str },
    /// `CNI_ARGS` is not `K=V;K=V`.
    #[error("CNI_ARGS {0:?} is malformed: expected KEY=VALUE pairs separated by ';'")]
    ArgsSyntax(String),
    /// `CNI_ARGS` has a key this plugin does not know, and no `IgnoreUnknown`.
    #[error("CNI_ARGS has unknown key {key:?} (this plugin knows {known}); add IgnoreUnknown=1 to ignore unknown keys")]
    ArgsUnknown { key: String, known: String },
}

fn list(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => "nothing is".into(),
    }
}

/// A container ID as the spec allows it: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates a container ID.
    pub fn new(s: &str) -> Result<Self, EnvError> {
        let mut chars = s.chars();
        let ok = s.len() <= 255
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(ContainerId(s.to_owned()))
        } else {
            Err(EnvError::ContainerId(s.to_owned()))
        }
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An interface name Linux accepts (the kernel's `dev_valid_name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    /// Linux's limit: IFNAMSIZ (16) minus the terminating NUL.
    pub const MAX_LEN: usize = 15;

    /// Validates an interface name.
    pub fn new(s: &str) -> Result<Self, EnvError> {
        let why = if s.is_empty() {
            Some("it is empty")
        } else if s.len() > Self::MAX_LEN {
            Some("it is longer than 15 bytes")
        } else if s == "." || s == ".." {
            Some("'.' and '..' are reserved")
        } else if s.contains('/') || s.contains(':') {
            Some("it contains '/' or ':'")
        } else if s.chars().any(|c| c.is_whitespace() || c == '\0') {
            Some("it contains whitespace or NUL")
        } else {
            None
        };
        match why {
            None => Ok(IfName(s.to_owned())),
            Some(why) => Err(EnvError::IfName {
                name: s.to_owned(),
                why,
            }),
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `CNI_ARGS`: `KEY=VALUE;KEY=VALUE`, with `IgnoreUnknown` honoured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    raw: String,
    pairs: Vec<(String, String)>,
    ignore_unknown: bool,
}

impl CniArgs {
    /// Parses `CNI_ARGS`; an empty string is no arguments.
    pub fn parse(raw: &str) -> Result<Self, EnvError> {
        let mut pairs = Vec::new();
        for part in raw.split(';').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if !k.is_empty() => pairs.push((k.to_owned(), v.to_owned())),
                _ => return Err(EnvError::ArgsSyntax(raw.to_owned())),
            }
        }
        let ignore_unknown = pairs
            .iter()
            .any(|(k, v)| k == "IgnoreUnknown" && (v == "1" || v.eq_ignore_ascii_case("true")));
        Ok(CniArgs {
            raw: raw.to_owned(),
            pairs,
            ignore_unknown,
        })
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The string as the runtime passed it (handed on unchanged to delegated plugins).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Fails on a key outside `known`, unless the runtime set `IgnoreUnknown`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), EnvError> {
        if self.ignore_unknown {
            return Ok(());
        }
        match self
            .pairs
            .iter()
            .find(|(k, _)| k != "IgnoreUnknown" && !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((key, _)) => Err(EnvError::ArgsUnknown {
                key: key.clone(),
                known: if known.is_empty() {
                    "no keys".into()
                } else {
                    known.join(", ")
                },
            }),
        }
    }
}

/// `CNI_PATH`: directories to search for plugin executables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPath(pub Vec<PathBuf>);

impl SearchPath {
    /// Parses a colon-separated list; empty entries are skipped.
    pub fn parse(raw: &str) -> Self {
        SearchPath(
            raw.split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        )
    }

    /// The list joined again, as passed to a delegated plugin.
    pub fn joined(&self) -> String {
        let parts: Vec<_> = self.0.iter().map(|p| p.to_string_lossy()).collect();
        parts.join(":")
    }
}

/// The container interface a command is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `CNI_CONTAINERID`.
    pub container_id: ContainerId,
    /// `CNI_IFNAME`.
    pub ifname: IfName,
}

/// The command with exactly the variables it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to the network.
    Add { target: Target, netns: PathBuf },
    /// Verify the attachment.
    Check { target: Target, netns: PathBuf },
    /// Detach; the netns may already be gone.
    Del {
        target: Target,
        netns: Option<PathBuf>,
    },
    /// Report supported versions.
    Version,
    /// Report whether ADD can succeed now.
    Status,
    /// Remove what belongs to no valid attachment.
    Gc,
}

impl Command {
    /// The command's name as in `CNI_COMMAND`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Add { .. } => "ADD",
            Command::Check { .. } => "CHECK",
            Command::Del { .. } => "DEL",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }
}

/// The whole environment of one plugin call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// What to do.
    pub command: Command,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`.
    pub path: SearchPath,
}

impl Env {
    /// Reads the environment through `var` (the process environment in `main`, a map in tests).
    pub fn parse(var: impl Fn(&str) -> Option<OsString>) -> Result<Self, EnvError> {
        let get = |name: &'static str| -> Result<Option<String>, EnvError> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .into_string()
                    .map(Some)
                    .map_err(|_| EnvError::NotUtf8(name)),
            }
        };
        let command = get("CNI_COMMAND")?.ok_or(EnvError::NoCommand)?;
        let (name, needs_target, needs_netns, needs_path): (&'static str, bool, bool, bool) =
            match command.as_str() {
                "ADD" => ("ADD", true, true, true),
                "CHECK" => ("CHECK", true, true, true),
                "DEL" => ("DEL", true, false, true),
                "VERSION" => ("VERSION", false, false, false),
                "STATUS" => ("STATUS", false, false, true),
                "GC" => ("GC", false, false, true),
                _ => return Err(EnvError::UnknownCommand(command)),
            };
        let id = get("CNI_CONTAINERID")?;
        let netns = get("CNI_NETNS")?;
        let ifname = get("CNI_IFNAME")?;
        let path = get("CNI_PATH")?;
        let mut missing = Vec::new();
        if needs_target && id.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if needs_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if needs_target && ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if needs_path && path.is_none() {
            missing.push("CNI_PATH");
        }
        if !missing.is_empty() {
            return Err(EnvError::Missing {
                command: name,
                missing,
            });
        }
        let target = || -> Result<Target, EnvError> {
            Ok(Target {
                container_id: ContainerId::new(id.as_deref().unwrap_or_default())?,
                ifname: IfName::new(ifname.as_deref().unwrap_or_default())?,
            })
        };
        let netns_path = netns.map(PathBuf::from);
        let command = match name {
            "ADD" => Command::Add {
                target: target()?,
                netns: netns_path.unwrap_or_default(),
            },
            "CHECK" => Command::Check {
                target: target()?,
                netns: netns_path.unwrap_or_default(),
            },
            "DEL" => Command::Del {
                target: target()?,
                netns: netns_path,
            },
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            _ => Command::Gc,
        };
        Ok(Env {
            command,
            args: CniArgs::parse(&get("CNI_ARGS")?.unwrap_or_default())?,
            path: SearchPath::parse(&path.unwrap_or_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, EnvError> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Env::parse(|k| map.get(k).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin::/usr/lib/cni"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        k: &'static str,
        v: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<_> = base.iter().filter(|(bk, _)| *bk != k).cloned().collect();
        out.push((k, v));
        out
    }

    #[test]
    fn add_parses_fully() {
        let e = env(ADD).unwrap();
        let Command::Add { target, netns } = &e.command else {
            panic!("{e:?}")
        };
        assert_eq!(target.container_id.as_str(), "abc123");
        assert_eq!(target.ifname.as_str(), "eth0");
        assert_eq!(netns, &PathBuf::from("/run/netns/x"));
        assert_eq!(e.path.0.len(), 2);
    }

    #[test]
    fn required_variables_per_command() {
        assert_eq!(env(&[]), Err(EnvError::NoCommand));
        assert!(matches!(
            env(&[("CNI_COMMAND", "FOO")]),
            Err(EnvError::UnknownCommand(_))
        ));
        assert!(matches!(
            env(&[("CNI_COMMAND", "add")]),
            Err(EnvError::UnknownCommand(_))
        ));
        let err = env(&[("CNI_COMMAND", "ADD")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH are required for ADD but not set"
        );
        let no_netns = with(ADD, "CNI_NETNS", "");
        assert!(matches!(env(&no_netns), Err(EnvError::Missing { .. })));
        let del = with(&no_netns, "CNI_COMMAND", "DEL");
        assert!(matches!(
            env(&del).unwrap().command,
            Command::Del { netns: None, .. }
        ));
        let check = with(&no_netns, "CNI_COMMAND", "CHECK");
        assert!(env(&check).is_err());
        assert_eq!(
            env(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
        assert!(env(&[("CNI_COMMAND", "STATUS")]).is_err());
        assert_eq!(
            env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")])
                .unwrap()
                .command,
            Command::Gc
        );
    }

    #[test]
    fn hostile_container_ids() {
        for bad in [
            "",
            "-a",
            ".hidden",
            "../etc",
            "a/b",
            "a b",
            "a;b",
            "é",
            &"a".repeat(256),
        ] {
            assert!(ContainerId::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "0", "abc_DEF.1-2", &"f".repeat(64)] {
            assert!(ContainerId::new(good).is_ok(), "{good:?} refused");
        }
        let bad = with(ADD, "CNI_CONTAINERID", "../../etc");
        assert!(matches!(env(&bad), Err(EnvError::ContainerId(_))));
    }

    #[test]
    fn interface_names_linux_refuses() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "sixteen-chars-xx",
        ] {
            assert!(IfName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["eth0", "fifteen-chars-x", "net1.2", "veth-a_b"] {
            assert!(IfName::new(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn cni_args() {
        let a = CniArgs::parse("IP=10.0.0.5;K8S_POD_NAME=x").unwrap();
        assert_eq!(a.get("IP"), Some("10.0.0.5"));
        assert!(a.check_known(&["IP"]).is_err());
        let a = CniArgs::parse("IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=x").unwrap();
        assert!(a.check_known(&["IP"]).is_ok());
        let a = CniArgs::parse("IgnoreUnknown=true;FOO=").unwrap();
        assert_eq!(a.get("FOO"), Some(""));
        assert!(a.check_known(&[]).is_ok());
        assert!(CniArgs::parse("IP").is_err());
        assert!(CniArgs::parse("=x").is_err());
        assert!(CniArgs::parse("").unwrap().check_known(&[]).is_ok());
        assert!(CniArgs::parse("A=b=c").unwrap().get("A") == Some("b=c"));
    }

    #[test]
    fn non_utf8_variable() {
        use std::os::unix::ffi::OsStringExt;
        let r = Env::parse(|k| match k {
            "CNI_COMMAND" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => None,
        });
        assert_eq!(r, Err(EnvError::NotUtf8("CNI_COMMAND")));
    }
}
