//! The full chain with one published port per container: cnm-bridge + cnm-ipam (port mapping
//! native) against the reference bridge + host-local + portmap, in one run; then one container
//! with 1,000 published ports, beside another container and alone. Run as root, against the
//! plugins as shipped:
//!
//! ```sh
//! ./dev/bench.sh portmap
//! CNM_BENCH_N=50 ./dev/bench.sh portmap
//! ```
//!
//! Plugins are spawned as a runtime spawns them: plainly, from a thread inside the throwaway host
//! namespace; a list runs in order on ADD (each given the previous result as `prevResult`) and in
//! reverse on DEL (given the ADD's result), as libcni does. Times are per container, whole list.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{cnm_plugin_dir, unique_ifname, Container, Host};
use serde_json::{json, Value};

const REF_DIR: &str = "/usr/lib/cni";

struct Side {
    name: &'static str,
    /// The plugin objects of the list, given the host and the bridge name.
    plugins: fn(&Host, &str) -> Vec<Value>,
}

fn sides() -> [Side; 2] {
    [
        Side {
            name: "cnm-bridge + cnm-ipam, native port mapping",
            plugins: |host, bridge| {
                vec![
                    json!({"type": "cnm-bridge", "bridge": bridge, "isGateway": true,
                    "isDefaultGateway": true, "ipMasq": true,
                    "capabilities": {"portMappings": true},
                    "ipam": {"type": "cnm-ipam", "subnet": "10.200.0.0/16",
                             "dataDir": host.state_dir().join("cnm")}}),
                ]
            },
        },
        Side {
            name: "reference bridge + host-local + portmap",
            plugins: |host, bridge| {
                vec![
                    json!({"type": "bridge", "bridge": bridge, "isGateway": true,
                        "isDefaultGateway": true, "ipMasq": true,
                        "ipam": {"type": "host-local", "subnet": "10.200.0.0/16",
                                 "dataDir": host.state_dir().join("host-local")}}),
                    json!({"type": "portmap", "capabilities": {"portMappings": true}}),
                ]
            },
        },
    ]
}

/// Runs plugin lists from the calling thread (which must be inside the host namespace).
struct Runner {
    path: String,
    dirs: Vec<PathBuf>,
}

impl Runner {
    fn exec(&self, plugin: &str, env: &[(&str, &str)], stdin: &[u8]) -> Value {
        let exe = self
            .dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
            .unwrap();
        let mut child = Command::new(&exe)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(env.iter().copied())
            .env("CNI_PATH", &self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{plugin} {env:?}: {text}");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// GC (spec 1.1.0) through the list with no valid attachment: removes what a network keeps
    /// after its last DEL (cnm's bridge).
    fn gc(&self, plugins: &[Value]) {
        let env = [("CNI_COMMAND", "GC")];
        for p in plugins {
            let mut conf = config(p, "1.1.0");
            conf["cni.dev/valid-attachments"] = json!([]);
            self.run_plugin(p, &env, &conf);
        }
    }

    /// Execs the plugin of object `p` with `conf` on stdin.
    fn run_plugin(&self, p: &Value, env: &[(&str, &str)], conf: &Value) -> Value {
        let stdin = serde_json::to_vec(conf).unwrap();
        self.exec(p["type"].as_str().unwrap(), env, &stdin)
    }

    /// ADD through the list, or DEL in reverse with `added` as prevResult; returns the result.
    fn list(
        &self,
        cmd: &str,
        plugins: &[Value],
        c: &Container,
        ports: &Value,
        added: &Value,
    ) -> Value {
        let env = [
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", c.id()),
            ("CNI_NETNS", c.path().to_str().unwrap()),
            ("CNI_IFNAME", "eth0"),
        ];
        let order: Vec<&Value> = if cmd == "DEL" {
            plugins.iter().rev().collect()
        } else {
            plugins.iter().collect()
        };
        let mut prev = if cmd == "DEL" {
            added.clone()
        } else {
            Value::Null
        };
        for (i, p) in order.iter().enumerate() {
            let mut conf = config(p, "1.0.0");
            if p["capabilities"]["portMappings"] == json!(true) {
                conf["runtimeConfig"] = json!({"portMappings": ports});
            }
            if !prev.is_null() && (cmd == "DEL" || i > 0) {
                conf["prevResult"] = prev.clone();
            }
            let out = self.run_plugin(p, &env, &conf);
            if cmd == "ADD" {
                prev = out;
            }
        }
        prev
    }
}

/// The plugin object `p` as a network configuration of `version`, named "bench".
fn config(p: &Value, version: &str) -> Value {
    let mut conf = p.clone();
    conf["cniVersion"] = json!(version);
    conf["name"] = json!("bench");
    conf
}

struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
    /// GC after each DEL (many_ports alone only).
    gc: Vec<Duration>,
}

fn run(side: &Side, n: usize, ports_per_container: usize) -> Samples {
    let host = Host::new("pmb").expect("host namespace");
    let plugins = (side.plugins)(&host, &unique_ifname("pb"));
    let containers: Vec<Container> = (0..n)
        .map(|i| Container::new(&format!("p{i}")).expect("container namespace"))
        .collect();
    let runner = Runner {
        path: format!("{}:{REF_DIR}", cnm_plugin_dir().display()),
        dirs: vec![cnm_plugin_dir(), PathBuf::from(REF_DIR)],
    };
    let ports = |i: usize| -> Value {
        (0..ports_per_container)
            .map(|k| json!({"hostPort": 10000 + i * ports_per_container + k, "containerPort": 80 + k, "protocol": "tcp"}))
            .collect()
    };
    host.netns()
        .run(|| {
            let mut added = Vec::new();
            let mut add = Vec::new();
            for (i, c) in containers.iter().enumerate() {
                let t = Instant::now();
                added.push(runner.list("ADD", &plugins, c, &ports(i), &Value::Null));
                add.push(t.elapsed());
            }
            let mut del = Vec::new();
            for (i, c) in containers.iter().enumerate() {
                let t = Instant::now();
                runner.list("DEL", &plugins, c, &ports(i), &added[i]);
                del.push(t.elapsed());
            }
            Samples {
                add,
                del,
                gc: Vec::new(),
            }
        })
        .expect("enter the host namespace")
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the portmap bench needs root (it creates network namespaces)");
        return;
    }
    for p in ["cnm-bridge", "cnm-ipam"] {
        if !cnm_plugin_dir().join(p).is_file() {
            eprintln!("skipped: {p} not built (run the benches with ./dev/bench.sh)");
            return;
        }
    }
    let ns: Vec<usize> = std::env::var("CNM_BENCH_N")
        .unwrap_or_else(|_| "50,500".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    for n in ns {
        let k = (n / 10).clamp(1, 50);
        println!("\nN = {n} containers, one published port each (first/last {k})");
        println!("| side | ADD median | ADD p90 | first {k} | last {k} | DEL median | DEL p90 |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        let results: Vec<Samples> = sides()
            .iter()
            .map(|s| {
                let r = run(s, n, 1);
                settle(n);
                r
            })
            .collect();
        for (side, r) in sides().iter().zip(&results) {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                side.name,
                ms(pct(&r.add, 0.5)),
                ms(pct(&r.add, 0.9)),
                ms(pct(&r.add[..k], 0.5)),
                ms(pct(&r.add[n - k..], 0.5)),
                ms(pct(&r.del, 0.5)),
                ms(pct(&r.del, 0.9)),
            );
        }
        let ratio = |f: fn(&Samples) -> &Vec<Duration>| {
            pct(f(&results[1]), 0.5).as_secs_f64() / pct(f(&results[0]), 0.5).as_secs_f64()
        };
        println!(
            "ADD: reference / cnm = {:.1}x; DEL: reference / cnm = {:.1}x; cnm ADD last/first = {:.2}",
            ratio(|s| &s.add),
            ratio(|s| &s.del),
            pct(&results[0].add[n - k..], 0.5).as_secs_f64() / pct(&results[0].add[..k], 0.5).as_secs_f64()
        );
    }
    println!("\none container with 1,000 published ports (cnm-bridge), added and deleted {BIG_ROUNDS} times:");
    println!("| beside it on the network | ADD median | ADD max | DEL median | DEL max |");
    println!("| --- | --- | --- | --- | --- |");
    let mut gc = Vec::new();
    for (neighbour, what) in [
        (true, "a container without ports"),
        (
            false,
            "nothing (each ADD makes the bridge; each DEL is the network's last)",
        ),
    ] {
        let big = many_ports(BIG_ROUNDS, neighbour);
        println!(
            "| {what} | {} | {} | {} | {} |",
            ms(pct(&big.add, 0.5)),
            ms(pct(&big.add, 1.0)),
            ms(pct(&big.del, 0.5)),
            ms(pct(&big.del, 1.0)),
        );
        gc.extend(big.gc);
        settle(2);
    }
    println!(
        "GC of the network left without endpoints (deletes its bridge): median {}, max {}",
        ms(pct(&gc, 0.5)),
        ms(pct(&gc, 1.0)),
    );
}

const BIG_ROUNDS: usize = 7;

/// One container with 1,000 published ports, added and deleted `rounds` times by cnm-bridge, on
/// a network where another container (no ports) stays attached throughout (`neighbour`), or
/// alone: then every ADD makes the bridge and every DEL is also the network's last (it removes
/// the network's nftables elements; the bridge stays), and a GC after it, timed apart, deletes
/// the bridge (two RCU grace periods in the kernel, 35-60 ms here).
fn many_ports(rounds: usize, neighbour: bool) -> Samples {
    let side = &sides()[0];
    let host = Host::new("pmbig").expect("host namespace");
    let plugins = (side.plugins)(&host, &unique_ifname("pg"));
    let (other, big) = (
        Container::new("nb").expect("container namespace"),
        Container::new("big").expect("container namespace"),
    );
    let runner = Runner {
        path: format!("{}:{REF_DIR}", cnm_plugin_dir().display()),
        dirs: vec![cnm_plugin_dir(), PathBuf::from(REF_DIR)],
    };
    let ports: Value = (0..1000)
        .map(|k| json!({"hostPort": 20000 + k, "containerPort": 80, "protocol": "tcp"}))
        .collect();
    host.netns()
        .run(|| {
            let none = json!([]);
            let kept = neighbour.then(|| runner.list("ADD", &plugins, &other, &none, &Value::Null));
            let (mut add, mut del, mut gc) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let t = Instant::now();
                let added = runner.list("ADD", &plugins, &big, &ports, &Value::Null);
                add.push(t.elapsed());
                let t = Instant::now();
                runner.list("DEL", &plugins, &big, &ports, &added);
                del.push(t.elapsed());
                if !neighbour {
                    let t = Instant::now();
                    runner.gc(&plugins);
                    gc.push(t.elapsed());
                }
            }
            if let Some(added) = kept {
                runner.list("DEL", &plugins, &other, &none, &added);
            }
            Samples { add, del, gc }
        })
        .expect("enter the host namespace")
}

/// The kernel destroys the namespaces a phase dropped in the background (RCU-heavy work on
/// these 2 cores); measuring the next phase meanwhile would charge it that work.
fn settle(namespaces: usize) {
    std::thread::sleep(Duration::from_millis(3000 + 30 * namespaces as u64));
}
