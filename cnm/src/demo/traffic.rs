//! The traffic between the containers: pings, and HTTP requests to web directly and through
//! its published port, each reported with what web saw.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use cnm_core::model::Scratch;

use super::flow::{Container, HOST_PORT, WEB_PORT};
use super::{detail, ping, say, tcp, Fallible, Progress};

/// Echo requests per ping, each answered within a second or followed by the next: a veth just
/// brought up drops what it sends until the kernel's link watcher activates it.
const PING_ATTEMPTS: u16 = 3;
const PING_WAIT: Duration = Duration::from_secs(1);

/// web's server: its listening socket (made inside web's namespace) and its answer.
pub(super) struct Server {
    pub(super) listener: TcpListener,
    pub(super) greeting: String,
}

/// Pings `to` from inside `from` and prints the reply.
pub(super) fn ping(progress: &Progress, from: &Container, to: &Container) -> Fallible<()> {
    let stop = progress.interrupted;
    let reply = from
        .sandbox
        .run(|| ping::ping(to.addr, PING_ATTEMPTS, PING_WAIT, stop))??;
    progress.check()?;
    let route = format!("{} -> {} {}", from.name, to.name, to.addr);
    let Some(r) = reply else {
        let waited = PING_WAIT * u32::from(PING_ATTEMPTS);
        return Err(format!("{route}: no echo reply in {} s", waited.as_secs()).into());
    };
    let lost = match r.seq {
        1 => String::new(),
        n => format!(" ({} request(s) unanswered before)", n - 1),
    };
    detail(&format!(
        "{route}: {} bytes, icmp_seq={} ttl={} time={:.3} ms{lost}",
        r.bytes,
        r.seq,
        r.ttl,
        r.rtt.as_secs_f64() * 1000.0
    ));
    Ok(())
}

/// Requests to web from client1 directly, from client2 through the published port on the
/// gateway (hairpin), and from the host through the same port.
pub(super) fn requests(
    progress: &Progress,
    web_server: &Server,
    [web, client1, client2]: [&Container; 3],
    gateway: Ipv4Addr,
) -> Fallible<()> {
    let names = [
        (IpAddr::V4(web.addr), "web"),
        (IpAddr::V4(client1.addr), "client1"),
        (IpAddr::V4(client2.addr), "client2"),
        (IpAddr::V4(gateway), "the host"),
    ];
    let published = SocketAddr::from((gateway, HOST_PORT));
    let direct = SocketAddr::from((web.addr, WEB_PORT));
    // Who asks (a container, or the host: this thread is in its namespace), where, and how.
    let requests = [
        (Some(client1), direct, "directly"),
        (
            Some(client2),
            published,
            "web's published port, from a neighbour",
        ),
        (None, published, "web's published port, from the host"),
    ];
    for (from, to, how) in requests {
        progress.check()?;
        let who = from.map_or("host", |c| c.name);
        detail(&format!("{who} -> {to} ({how})"));
        let (listener, greeting) = (&web_server.listener, &web_server.greeting);
        let done = tcp::exchange(listener, greeting, progress.interrupted, || match from {
            Some(c) => c
                .sandbox
                .run(|| tcp::request(to))
                .map_err(io::Error::other)?,
            None => tcp::request(to),
        });
        progress.check()?;
        let done = done.map_err(|e| format!("{who} -> {to}: {e}"))?;
        detail(&format!("  answer: {}", done.answer));
        detail(&format!("  {}", source_note(&done, &names)));
    }
    Ok(())
}

/// What web saw as the request's source, next to the client's own address: the same, or a
/// translated one (masquerade), as it happened.
fn source_note(done: &tcp::Exchange, names: &[(IpAddr, &str)]) -> String {
    let name = |a: IpAddr| {
        let found = names.iter().find(|(addr, _)| *addr == a);
        found.map_or("an unknown address", |(_, n)| *n)
    };
    let (seen, client) = (done.seen, done.client);
    if seen.ip() == client.ip() {
        format!(
            "web saw {seen}: {}'s own address, not translated",
            name(seen.ip())
        )
    } else {
        format!(
            "web saw {seen}, {}'s address, not {}'s own {client}: source-translated on the way",
            name(seen.ip()),
            name(client.ip())
        )
    }
}

/// Keeps everything until the demo is interrupted; web answers requests meanwhile (its server
/// looks at the flag every few milliseconds).
pub(super) fn hold_until_interrupted(
    scratch: &Scratch,
    web: &Container,
    web_server: &Server,
    progress: &Progress,
) -> Fallible<()> {
    let host = scratch.host().path().file_name().unwrap_or_default();
    detail("holding; look around from another terminal, e.g.:");
    detail(&format!(
        "  ip netns exec {} ip addr",
        host.to_string_lossy()
    ));
    detail(&format!(
        "  nsenter --net={} ip addr",
        web.sandbox.key().display()
    ));
    detail(&format!(
        "web keeps answering on {}:{WEB_PORT} and on the host's port {HOST_PORT}",
        web.addr
    ));
    say("press Ctrl-C to clean up");
    let (listener, greeting) = (&web_server.listener, &web_server.greeting);
    tcp::serve_until(
        listener,
        greeting,
        progress.interrupted,
        |served| match served {
            Ok(from) => detail(&format!("web answered a request from {from}")),
            Err(e) => detail(&format!("web: a request failed: {e}")),
        },
    );
    progress.check()
}
