//! The README's first command: throwaway namespaces, a network, two containers that talk.
//!
//! A "host" namespace and two container namespaces are created; a network is attached to each
//! container through the CNI protocol, exactly as a runtime does it (the harness execs the plugins
//! with `CNI_*` and the config on stdin); the containers ping each other and exchange a TCP request
//! that shows the real source address; then everything is deleted and the namespaces removed,
//! also on error or panic (their handles remove them on drop).
//!
//! The network is run by `cnm-bridge` with `cnm-ipam`; a third, "outside" namespace on its own
//! link to the host shows masquerade.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use conformance::{cnm_plugin_dir, ping, tcp_roundtrip, unique_ifname, Container, Host};
use serde_json::{json, Value};

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("demo: run as root (it creates throwaway network namespaces)");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => {
            println!("demo: done; every namespace, link and file it made is gone");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(what: &str) {
    println!("==> {what}");
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    step("creating a throwaway host namespace and two container namespaces");
    let host = Host::new("demo")?;
    let (c1, c2) = (Container::new("demo1")?, Container::new("demo2")?);
    let runtime = host.runtime(vec![cnm_plugin_dir(), PathBuf::from("/usr/lib/cni")])?;

    for plugin in ["cnm-bridge", "cnm-ipam"] {
        match runtime.version(plugin, "1.1.0") {
            Ok(v) => println!(
                "    {plugin}: speaks CNI {}",
                v.supported_versions.join(", ")
            ),
            Err(e) => println!("    {plugin}: not built ({e}); run `cargo build` first"),
        }
    }

    let bridge = unique_ifname("demo");
    let list = conformance::NetworkConfigList::from_value(&json!({
        "cniVersion": "1.1.0",
        "name": "demo",
        "plugins": [{
            "type": "cnm-bridge", "bridge": bridge, "isGateway": true,
            "isDefaultGateway": true, "ipMasq": true,
            "ipam": {"type": "cnm-ipam", "subnet": "10.77.0.0/24",
                     "dataDir": host.state_dir().join("cnm")}
        }]
    }))?;
    step(&format!(
        "network \"demo\": bridge {bridge}, subnet 10.77.0.0/24"
    ));

    let mut addrs = Vec::new();
    for (name, c) in [("c1", &c1), ("c2", &c2)] {
        let rt = c.runtime_conf("eth0");
        let result = runtime.add_network_list(&list, &rt)?;
        let addr = first_address(&result).ok_or("ADD returned no address")?;
        println!("    ADD {name} (container ID {}) eth0 -> {addr}", c.id());
        addrs.push(addr);
    }

    step("ping both ways");
    for (from, name, to) in [(&c1, "c1", addrs[1]), (&c2, "c2", addrs[0])] {
        let ok = ping(from.netns(), to);
        println!(
            "    {name} -> {to}: {}",
            if ok { "reply" } else { "NO REPLY" }
        );
        if !ok {
            return Err(format!("{name} cannot reach {to}").into());
        }
    }

    step("TCP request from c2 to c1:8080");
    let seen = tcp_roundtrip(
        c1.netns(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8080),
        c2.netns(),
        SocketAddr::new(addrs[0], 8080),
    )?;
    println!("    c1 saw the connection from {seen} (c2's own address: no NAT inside the network)");

    step("TCP request from c1 to an outside host (198.18.0.2:9000)");
    let (host_out, client) = ([198, 18, 0, 1].into(), [198, 18, 0, 2].into());
    let outside = conformance::net::outside(&host, host_out, client)?;
    let seen = tcp_roundtrip(
        outside.netns(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 9000),
        c1.netns(),
        SocketAddr::new(IpAddr::V4(client), 9000),
    )?;
    println!("    the outside host saw {seen} (masqueraded as the host's address {host_out})");

    step("CHECK both containers");
    for (name, c) in [("c1", &c1), ("c2", &c2)] {
        runtime.check_network_list(&list, &c.runtime_conf("eth0"))?;
        println!("    CHECK {name}: ok");
    }

    step("DEL both containers");
    for (name, c) in [("c1", &c1), ("c2", &c2)] {
        runtime.del_network_list(&list, &c.runtime_conf("eth0"))?;
        println!("    DEL {name} eth0");
    }
    Ok(())
}

fn first_address(result: &Value) -> Option<IpAddr> {
    let cidr = result["ips"][0]["address"].as_str()?;
    cidr.split('/').next()?.parse().ok()
}
