//! Fake plugins: shell scripts that record each call (plugin, env, stdin, netns) in a shared log
//! directory and answer with canned output per command.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use conformance::{require_root, Host, NetworkConfigList, Runtime, RuntimeConf};
use serde_json::{json, Value};

/// One recorded call.
#[derive(Debug)]
pub struct Call {
    pub plugin: String,
    pub env: BTreeMap<String, String>,
    pub stdin: Value,
    /// `readlink /proc/self/ns/net` as seen by the plugin.
    pub netns: String,
}

impl Call {
    pub fn command(&self) -> &str {
        &self.env["CNI_COMMAND"]
    }
}

/// A directory of fake plugins sharing one call log.
pub struct Fakes {
    pub bin: PathBuf,
    log: PathBuf,
}

impl Fakes {
    pub fn new(root: &Path) -> Self {
        let (bin, log) = (root.join("bin"), root.join("log"));
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&log).unwrap();
        Fakes { bin, log }
    }

    /// Writes plugin `name`; `replies` maps a CNI_COMMAND to (stdout, exit code). Commands not
    /// listed print nothing and exit 0.
    pub fn plugin(&self, name: &str, replies: &[(&str, &str, i32)]) {
        let mut cases = String::new();
        for (command, stdout, code) in replies {
            cases += &format!("{command})\ncat <<'CNI_EOF'\n{stdout}\nCNI_EOF\nexit {code};;\n");
        }
        let script = format!(
            r#"#!/bin/sh
n=0
while ! mkdir "{log}/$n" 2>/dev/null; do n=$((n+1)); done
d="{log}/$n"
env > "$d/env.tmp"
cat > "$d/stdin"
readlink /proc/self/ns/net > "$d/netns"
echo {name} > "$d/plugin"
mv "$d/env.tmp" "$d/env"
case "$CNI_COMMAND" in
{cases}esac
"#,
            log = self.log.display()
        );
        let path = self.bin.join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Every call so far, in order; clears the log.
    pub fn take_calls(&self) -> Vec<Call> {
        let mut dirs: Vec<(u64, PathBuf)> = fs::read_dir(&self.log)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_str().unwrap().parse().unwrap(), p)
            })
            .collect();
        dirs.sort();
        let calls = dirs
            .iter()
            .map(|(_, d)| {
                let read = |f: &str| fs::read_to_string(d.join(f)).unwrap();
                let env = read("env")
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    // dash exports PWD on its own; everything else comes from the runtime.
                    .filter(|(k, _)| *k != "PWD")
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let stdin = read("stdin");
                Call {
                    plugin: read("plugin").trim().to_owned(),
                    env,
                    stdin: serde_json::from_str(&stdin).unwrap_or(Value::String(stdin)),
                    netns: read("netns").trim().to_owned(),
                }
            })
            .collect();
        for (_, d) in dirs {
            fs::remove_dir_all(d).unwrap();
        }
        calls
    }
}

/// A host netns with a directory of fakes as CNI_PATH (after a missing directory).
pub struct Setup {
    pub host: Host,
    pub fakes: Fakes,
    pub runtime: Runtime,
}

pub fn setup(test: &str) -> Option<Setup> {
    if !require_root(test) {
        return None;
    }
    let host = Host::new("hns").unwrap();
    let fakes = Fakes::new(host.state_dir());
    // A missing first directory: lookup must go on to the next one.
    let cni_path = vec![host.state_dir().join("missing"), fakes.bin.clone()];
    let mut runtime = host.runtime(cni_path).unwrap();
    // Exactly what libcni passes: no cnm-specific variables for the fakes to record.
    runtime.extra_env.clear();
    Some(Setup {
        host,
        fakes,
        runtime,
    })
}

pub fn result(version: &str, marker: &str) -> String {
    json!({"cniVersion": version, "marker": marker}).to_string()
}

/// Plugins a, b, c answering ADD with a result naming themselves.
pub fn three_plugins(f: &Fakes, version: &str) {
    for name in ["a", "b", "c"] {
        f.plugin(name, &[("ADD", &result(version, name), 0)]);
    }
}

pub fn list(version: &str) -> NetworkConfigList {
    NetworkConfigList::from_value(&json!({
        "cniVersion": version, "name": "fakenet",
        "plugins": [
            {"type": "a", "capabilities": {"portMappings": true}},
            {"type": "b", "name": "ignored", "cniVersion": "0.1.0"},
            {"type": "c", "capabilities": {"portMappings": false, "bandwidth": true}}
        ]
    }))
    .unwrap()
}

pub fn rt() -> RuntimeConf {
    let mut rt = RuntimeConf {
        container_id: "ctr-1".into(),
        netns: "/run/netns/not-used-by-fakes".into(),
        ifname: "eth0".into(),
        args: vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAME".into(), "p".into()),
        ],
        ..RuntimeConf::default()
    };
    let caps = &mut rt.capability_args;
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80}]),
    );
    caps.insert("mac".into(), json!("c2:11:22:33:44:55"));
    rt
}

pub fn plugins(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.plugin.as_str()).collect()
}

pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("PATH".into(), conformance::exec::PLUGIN_PATH.into());
    env
}

pub fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}
