//! Traffic and inspection helpers for tests: `ip` and `ping` run inside a chosen namespace, and a
//! TCP exchange between two namespaces.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cnm_core::netns::Netns;

use crate::exec::command_in;

fn in_ns<T>(r: Result<T, cnm_core::netns::NetnsError>) -> io::Result<T> {
    r.map_err(io::Error::other)
}

/// Runs `ip ARGS` inside `ns` and returns its stdout; a non-zero exit is an error with its stderr.
pub fn ip(ns: &Netns, args: &[&str]) -> io::Result<String> {
    let out = command_in(ns, "ip")?
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The names of all links in `ns` (without the `@peer` suffix `ip` shows).
pub fn link_names(ns: &Netns) -> io::Result<Vec<String>> {
    let out = ip(ns, &["-o", "link", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect())
}

/// Whether `addr` answers from inside `from`: up to three `ping -c1 -W1`, stopping at the first
/// reply. A veth that was just brought up drops what it sends until the kernel's link watcher
/// activates it (up to a second on a loaded machine), so one request is not enough.
pub fn ping(from: &Netns, addr: IpAddr) -> bool {
    (0..3).any(|_| {
        command_in(from, "ping")
            .and_then(|mut c| {
                c.args(["-c1", "-W1", "-n", &addr.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
            })
            .is_ok_and(|s| s.success())
    })
}

/// Listens on `listen` inside `server_ns`, connects to `connect_to` from inside `client_ns`,
/// exchanges a line each way and returns the client address the listener saw.
///
/// Connections made back to back through the same NAT can meet a 4-tuple that an earlier one
/// still holds in TIME_WAIT (EADDRINUSE); that is the test's artefact, not the network's, so
/// it is retried twice.
pub fn tcp_roundtrip(
    server_ns: &Netns,
    listen: SocketAddr,
    client_ns: &Netns,
    connect_to: SocketAddr,
) -> io::Result<SocketAddr> {
    let mut tries = 0;
    loop {
        match tcp_once(server_ns, listen, client_ns, connect_to) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 2 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn tcp_once(
    server_ns: &Netns,
    listen: SocketAddr,
    client_ns: &Netns,
    connect_to: SocketAddr,
) -> io::Result<SocketAddr> {
    let timeout = Duration::from_secs(3);
    // Sockets belong to the namespace they were created in, whichever thread uses them later.
    let listener = in_ns(server_ns.run(|| TcpListener::bind(listen)))??;
    let mut client = in_ns(client_ns.run(|| TcpStream::connect_timeout(&connect_to, timeout)))??;
    let (mut conn, peer) = accept_within(&listener, timeout)?;
    for s in [&client, &conn] {
        s.set_read_timeout(Some(timeout))?;
    }
    client.write_all(b"ping\n")?;
    expect_line(&mut conn, b"ping\n")?;
    conn.write_all(b"pong\n")?;
    expect_line(&mut client, b"pong\n")?;
    Ok(peer)
}

fn accept_within(listener: &TcpListener, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, peer)) => {
                s.set_nonblocking(false)?;
                return Ok((s, peer));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn expect_line(s: &mut TcpStream, want: &[u8]) -> io::Result<()> {
    let mut buf = vec![0; want.len()];
    s.read_exact(&mut buf)?;
    if buf != want {
        return Err(io::Error::other(format!("unexpected data {buf:?}")));
    }
    Ok(())
}

/// An "outside" host: a namespace on its own veth to `host`, `host_addr/24` on the host end,
/// `client_addr/24` inside with a default route back via `host_addr`. Removed on drop.
pub fn outside(
    host: &crate::Host,
    host_addr: std::net::Ipv4Addr,
    client_addr: std::net::Ipv4Addr,
) -> io::Result<crate::Container> {
    let client = crate::Container::new("ext").map_err(io::Error::other)?;
    let host_end = crate::unique_ifname("cx");
    let client_ns = client
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("container netns path has no name"))?
        .to_owned();
    let h = host.netns();
    ip(
        h,
        &[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &client_ns,
        ],
    )?;
    ip(
        h,
        &["addr", "add", &format!("{host_addr}/24"), "dev", &host_end],
    )?;
    ip(h, &["link", "set", &host_end, "up"])?;
    let cn = client.netns();
    ip(
        cn,
        &["addr", "add", &format!("{client_addr}/24"), "dev", "eth0"],
    )?;
    ip(cn, &["link", "set", "eth0", "up"])?;
    ip(
        cn,
        &["route", "add", "default", "via", &host_addr.to_string()],
    )?;
    Ok(client)
}
