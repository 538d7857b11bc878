//! ADD/DEL cost of cnm-bridge + cnm-ipam against the reference bridge + host-local, in one run.
//!
//! Each side gets a fresh throwaway host namespace and N container namespaces; each plugin call
//! is exec'd as a runtime execs it (env + stdin, from a thread inside the host namespace, plain
//! spawn) and timed from spawn to exit. DEL is compared with its floor: deleting one bare veth
//! pair in-process, its peer in the same container namespace, right after each of cnm's DELs
//! (so under the same load). Run as root, against the plugins as shipped:
//!
//! ```sh
//! ./dev/bench.sh cni
//! CNM_BENCH_N=50 ./dev/bench.sh cni
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cnm_core::netlink::{Handle, VethSpec};
use conformance::{cnm_plugin_dir, unique_ifname, Container, Host};
use serde_json::{json, Value};

const REF_DIR: &str = "/usr/lib/cni";

struct Side {
    name: &'static str,
    plugin: PathBuf,
    conf: fn(&Host, &str) -> Value,
    /// Whether to sample the DEL floor after each of this side's DELs.
    floor: bool,
}

struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
    /// VERSION: the same exec path doing no work (the process floor).
    version: Vec<Duration>,
    /// Deleting a bare veth pair in-process after each DEL (the DEL floor), if asked for.
    floor: Vec<Duration>,
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the cni bench needs root (it creates network namespaces)");
        return;
    }
    let n: usize = std::env::var("CNM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cnm_dir = cnm_plugin_dir();
    let sides = [
        Side {
            name: "cnm-bridge + cnm-ipam",
            plugin: cnm_dir.join("cnm-bridge"),
            conf: |host, bridge| {
                json!({"type": "cnm-bridge", "bridge": bridge, "isGateway": true,
                       "isDefaultGateway": true, "ipMasq": true,
                       "ipam": {"type": "cnm-ipam", "subnet": "10.200.0.0/16",
                                "dataDir": host.state_dir().join("cnm")}})
            },
            floor: true,
        },
        Side {
            name: "reference bridge + host-local",
            plugin: Path::new(REF_DIR).join("bridge"),
            conf: |host, bridge| {
                json!({"type": "bridge", "bridge": bridge, "isGateway": true,
                       "isDefaultGateway": true, "ipMasq": true,
                       "ipam": {"type": "host-local", "subnet": "10.200.0.0/16",
                                "dataDir": host.state_dir().join("host-local")}})
            },
            floor: false,
        },
    ];
    for side in &sides {
        if !side.plugin.is_file() {
            eprintln!(
                "skipped: {} not found (run the benches with ./dev/bench.sh)",
                side.plugin.display()
            );
            return;
        }
    }
    println!("N = {n} containers per side, each in its own namespace; times are spawn-to-exit of the plugin");
    let results: Vec<Samples> = sides
        .iter()
        .map(|s| {
            let r = run(s, n, &cnm_dir);
            settle(n);
            r
        })
        .collect();
    report(&sides, &results, n);
}

fn run(side: &Side, n: usize, cnm_dir: &Path) -> Samples {
    let host = Host::new("bench").expect("host namespace");
    let bridge = unique_ifname("bb");
    let mut conf = (side.conf)(&host, &bridge);
    conf["cniVersion"] = json!("1.0.0");
    conf["name"] = json!("bench");
    let stdin = serde_json::to_vec(&conf).unwrap();
    let path = format!("{}:{REF_DIR}", cnm_dir.display());
    let containers: Vec<Container> = (0..n)
        .map(|i| Container::new(&format!("b{i}")).expect("container namespace"))
        .collect();
    let env = |cmd: &str, c: &Container| -> Vec<(String, String)> {
        [
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", c.id()),
            ("CNI_NETNS", c.path().to_str().unwrap()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", &path),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    // A runtime lives in the host namespace and spawns plugins plainly; so does this loop, on
    // a scoped thread that enters the host namespace and ends with it (children inherit the
    // thread's namespace). No pre_exec hook: spawning can use vfork, as a runtime's would.
    let run_all = || {
        let timed = |cmd: &str, c: &Container| {
            let start = Instant::now();
            let mut child = Command::new(&side.plugin)
                .env_clear()
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                )
                .envs(env(cmd, c))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{} {cmd}: spawn: {e}", side.name));
            child.stdin.take().unwrap().write_all(&stdin).unwrap();
            let out = child.wait_with_output().unwrap();
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{} {cmd}: {}",
                side.name,
                String::from_utf8_lossy(&out.stdout)
            );
            elapsed
        };
        let version = containers
            .iter()
            .take(50)
            .map(|c| timed("VERSION", c))
            .collect();
        let add = containers.iter().map(|c| timed("ADD", c)).collect();
        let mut floor = Vec::new();
        let del = containers
            .iter()
            .map(|c| {
                let t = timed("DEL", c);
                if side.floor {
                    floor.push(bare_veth_delete(c));
                }
                t
            })
            .collect();
        Samples {
            add,
            del,
            version,
            floor,
        }
    };
    host.netns().run(run_all).expect("enter the host namespace")
}

/// The floor of DEL: deleting one veth pair whose peer is in `c`, in-process, from the calling
/// thread's namespace (the host's).
fn bare_veth_delete(c: &Container) -> Duration {
    let mut h = Handle::new().expect("netlink socket");
    let name = unique_ifname("fv");
    h.create_veth(&VethSpec {
        name: &name,
        peer_name: "eth0",
        peer_netns: Some(c.netns()),
        up: true,
        ..VethSpec::default()
    })
    .expect("create veth");
    let start = Instant::now();
    h.delete_link_by_name(&name).expect("delete veth");
    start.elapsed()
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn report(sides: &[Side], results: &[Samples], n: usize) {
    let floor = &sides
        .iter()
        .zip(results)
        .find(|(side, _)| side.floor)
        .expect("one side samples the DEL floor")
        .1
        .floor;
    let k = (n / 10).clamp(1, 20);
    println!();
    println!("| side | VERSION (exec floor) | ADD median | ADD p90 | first {k} ADDs | last {k} ADDs | DEL median | DEL p90 |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (side, s) in sides.iter().zip(results) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            side.name,
            ms(percentile(&s.version, 0.5)),
            ms(percentile(&s.add, 0.5)),
            ms(percentile(&s.add, 0.9)),
            ms(percentile(&s.add[..k], 0.5)),
            ms(percentile(&s.add[n - k..], 0.5)),
            ms(percentile(&s.del, 0.5)),
            ms(percentile(&s.del, 0.9)),
        );
    }
    let floor_median = percentile(floor, 0.5);
    println!(
        "| bare veth delete (in-process floor, after each cnm DEL) | | | | | | {} | {} |",
        ms(floor_median),
        ms(percentile(floor, 0.9))
    );
    let (cnm, reference) = (&results[0], &results[1]);
    let ratio = |a: &[Duration], b: &[Duration]| {
        percentile(b, 0.5).as_secs_f64() / percentile(a, 0.5).as_secs_f64()
    };
    println!();
    println!(
        "ADD: reference / cnm = {:.1}x (median)",
        ratio(&cnm.add, &reference.add)
    );
    println!(
        "DEL: reference / cnm = {:.1}x (median)",
        ratio(&cnm.del, &reference.del)
    );
    println!(
        "ADD flatness: last {k} / first {k} = {:.2}",
        ratio(&cnm.add[..k], &cnm.add[n - k..])
    );
    let above = |s: &Samples| percentile(&s.add, 0.5).saturating_sub(percentile(&s.version, 0.5));
    println!(
        "ADD above the exec floor: cnm {}, reference {} ({:.1}x)",
        ms(above(cnm)),
        ms(above(reference)),
        above(reference).as_secs_f64() / above(cnm).as_secs_f64()
    );
    println!(
        "DEL: cnm / bare veth delete = {:.2}",
        percentile(&cnm.del, 0.5).as_secs_f64() / floor_median.as_secs_f64()
    );
}

/// The kernel destroys the namespaces a phase dropped in the background (RCU-heavy work on
/// these 2 cores); measuring the next phase meanwhile would charge it that work.
fn settle(namespaces: usize) {
    std::thread::sleep(Duration::from_millis(3000 + 30 * namespaces as u64));
}
