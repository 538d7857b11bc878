//! Times the netlink part of a bridge ADD, in-process, inside throwaway namespaces:
//! veth created with its peer inside the container and attached to the bridge (one message),
//! a socket opened inside the container, then address, up, default route there.
//!
//! `cargo bench -p cnm-core --bench netlink [-- ITERATIONS]`; needs root.

use std::time::{Duration, Instant};

use ipnet::IpNet;

use cnm_core::netlink::{BridgeSpec, Handle, RouteSpec, VethSpec};
use cnm_core::netns::{OwnedNetns, NETNS_RUN_DIR};

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root (creates network namespaces and links)");
        return;
    }
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let pid = std::process::id();
    let host = OwnedNetns::create(NETNS_RUN_DIR, &format!("cnmt-nlb-{pid}-host")).unwrap();
    let ctr = OwnedNetns::create(NETNS_RUN_DIR, &format!("cnmt-nlb-{pid}-ctr")).unwrap();
    let mut h = Handle::new_in(&host).unwrap();
    h.create_bridge(&BridgeSpec {
        name: "cnm0",
        up: true,
        ..Default::default()
    })
    .unwrap();
    let br = h.link_by_name("cnm0").unwrap().unwrap().index;
    h.add_address(br, "10.250.0.1/16".parse::<IpNet>().unwrap())
        .unwrap();
    let default_route = RouteSpec {
        gw: Some("10.250.0.1".parse().unwrap()),
        ..RouteSpec::new("0.0.0.0/0".parse().unwrap())
    };

    let mut total = Vec::with_capacity(iterations);
    let mut veth = Vec::with_capacity(iterations);
    let mut open_inside = Vec::with_capacity(iterations);
    let mut delete = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let name = format!("veth{i:08x}");
        let t0 = Instant::now();
        h.create_veth(&VethSpec {
            name: &name,
            peer_name: "eth0",
            peer_netns: Some(&ctr),
            master: Some(br),
            up: true,
            ..Default::default()
        })
        .unwrap();
        let t1 = Instant::now();
        let mut c = Handle::new_in(&ctr).unwrap();
        let t2 = Instant::now();
        let eth0 = c.link_by_name("eth0").unwrap().unwrap().index;
        c.add_address(eth0, "10.250.1.2/16".parse::<IpNet>().unwrap())
            .unwrap();
        c.set_up(eth0).unwrap();
        c.add_route(&default_route).unwrap();
        let t3 = Instant::now();
        total.push(t3 - t0);
        veth.push(t1 - t0);
        open_inside.push(t2 - t1);
        let t4 = Instant::now();
        h.delete_link_by_name(&name).unwrap();
        delete.push(t4.elapsed());
    }
    println!("netlink part of a bridge ADD, in-process, {iterations} iterations (median / p90):");
    report(
        "whole ADD (veth + socket in netns + addr + up + route)",
        total,
    );
    report("  create veth (peer in netns, on bridge, up)", veth);
    report("  open a socket inside the container netns", open_inside);
    report("DEL: delete the veth (waits for RCU)", delete);
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "  {what:<58} {:>8.3} ms  {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3
    );
}
