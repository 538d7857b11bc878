//! The namespace layer (issue #9): a `simplebridge` network, two containers linked to it, two
//! network namespaces mounted at paths, the interfaces added, TCP from one namespace to the
//! other over IPv4 and IPv6, then everything removed.
//!
//! Everything runs inside a throwaway "host" namespace (the machine's own is never touched);
//! cnm's store and the namespaces' mount points live in a temporary directory. Guards remove
//! what was made on an error or a panic too. As root:
//! `cargo run -p cnm-examples --example namespaces`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use cnm_core::cni::config::NetworkName;
use cnm_core::cni::env::IfName;
use cnm_core::namespace::{new_network, Interface, NetworkNamespace, SimpleBridgeOptions};
use cnm_core::namespace::{SimpleNetwork, SIMPLEBRIDGE};
use cnm_core::netns::{OwnedNetns, NETNS_RUN_DIR};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("namespaces: run as root (it creates throwaway network namespaces)");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => {
            println!("done: every namespace, link, mount and file it made is gone");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("namespaces: failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    println!("work directory (temporary): {}", dir.path().display());
    let name = format!("cnmt-{}-host", std::process::id());
    let host = OwnedNetns::create(NETNS_RUN_DIR, &name)?;
    println!("host namespace (throwaway): {}", host.path().display());
    // The body runs on a thread inside the host namespace; a panic there comes back as an error.
    host.run(|| in_host(dir.path()))??;
    host.remove()?;
    dir.close()?;
    Ok(())
}

fn in_host(dir: &Path) -> Result<(), Error> {
    let options = SimpleBridgeOptions {
        name: NetworkName::new("example")?,
        bridge: IfName::new("cnm-ex0")?,
        subnet: "10.89.0.0/24".parse()?,
        subnet_v6: Some("fd89::/64".parse()?),
        mtu: 1500,
        store_dir: dir.join("store"),
    };
    println!(
        "network {}: driver {SIMPLEBRIDGE}, bridge {}, {} and {}",
        options.name,
        options.bridge,
        options.subnet,
        options.subnet_v6.map(|s| s.to_string()).unwrap_or_default()
    );
    let mut net = Network {
        net: Some(new_network(SIMPLEBRIDGE, options)?),
        linked: Vec::new(),
    };
    let mut containers = Vec::new();
    for id in ["c1", "c2"] {
        let iface = net.link(id)?;
        let mut ns = NetworkNamespace::create(dir.join("netns").join(id))?;
        ns.add_interface(&iface)?;
        println!("namespace {id}: {}", ns.path().display());
        for i in ns.interfaces() {
            println!("  interface {i}");
        }
        containers.push(ns);
    }

    let (c1, c2) = (&containers[0], &containers[1]);
    let to = &c2.interfaces()[0];
    let targets = [
        to.address.map(|a| IpAddr::V4(a.addr())),
        to.address_v6.map(|a| IpAddr::V6(a.addr())),
    ];
    for addr in targets.into_iter().flatten() {
        let (from, reply) = ping_pong(c1, c2, addr)?;
        println!("reach: c1 {from} -> c2 {addr}: tcp \"ping\" answered {reply:?}");
    }

    net.close()?;
    for ns in containers {
        let path = ns.path().to_owned();
        ns.delete()?;
        println!("removed namespace {}", path.display());
    }
    Ok(())
}

/// Connects from inside `from` to a listener inside `to` at `addr`, sends "ping" and reads the
/// answer; returns the source address `to` saw and the answer. The sockets are opened inside
/// their namespaces and used from this thread.
fn ping_pong(
    from: &NetworkNamespace,
    to: &NetworkNamespace,
    addr: IpAddr,
) -> Result<(IpAddr, String), Error> {
    let listener = to.netns().run(|| TcpListener::bind((addr, 0)))??;
    let target: SocketAddr = listener.local_addr()?;
    // The handshake completes into the listen backlog, so accept() below does not wait.
    let mut client = from
        .netns()
        .run(|| TcpStream::connect_timeout(&target, Duration::from_secs(5)))??;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    client.write_all(b"ping")?;
    let (mut server, peer) = listener.accept()?;
    server.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = [0u8; 4];
    server.read_exact(&mut got)?;
    if &got != b"ping" {
        return Err(format!(
            "c2 received {:?} instead of \"ping\"",
            String::from_utf8_lossy(&got)
        )
        .into());
    }
    server.write_all(b"pong")?;
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply)?;
    Ok((peer.ip(), String::from_utf8_lossy(&reply).into_owned()))
}

/// The network and the containers linked to it: dropped (on an error or a panic) it unlinks
/// them and deletes the network, saying nothing; [`Network::close`] does it and reports.
struct Network {
    net: Option<SimpleNetwork>,
    linked: Vec<String>,
}

impl Network {
    fn link(&mut self, id: &str) -> Result<Interface, Error> {
        let net = self.net.as_mut().expect("open until close");
        let iface = net.link(id)?;
        self.linked.push(id.to_owned());
        Ok(iface)
    }

    fn close(mut self) -> Result<(), Error> {
        let mut net = self.net.take().expect("open until close");
        for id in std::mem::take(&mut self.linked) {
            net.unlink(&id)?;
            println!("unlinked {id}");
        }
        let name = net.name().to_string();
        net.delete()?;
        println!("deleted network {name}");
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(mut net) = self.net.take() {
            for id in &self.linked {
                let _ = net.unlink(id);
            }
            let _ = net.delete();
        }
    }
}
