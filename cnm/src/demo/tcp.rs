//! A tiny HTTP/1.0 exchange: the client sends `GET /`, the server answers one line that names
//! itself and the address the request came from. Every blocking step has a timeout, and the
//! server's wait for a connection looks at a flag, so an interruption is noticed soon.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Connecting, reading and writing each give up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server of one exchange waits for its connection.
const ACCEPT_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting server looks at its flags.
const POLL: Duration = Duration::from_millis(20);
/// The most of a request or an answer that is read.
const MAX: u64 = 16 * 1024;

/// One request as both ends saw it.
#[derive(Debug)]
pub struct Exchange {
    /// The answer's one line.
    pub answer: String,
    /// The client's own address (its end of the connection).
    pub client: SocketAddr,
    /// The address the server saw the connection come from.
    pub seen: SocketAddr,
}

/// Serves one request on `listener`, answering `greeting`, while `client` (on this thread) makes
/// it; `client` returns the answer and its own address, as [`request`] does.
pub fn exchange(
    listener: &TcpListener,
    greeting: &str,
    stop: &AtomicBool,
    client: impl FnOnce() -> io::Result<(String, SocketAddr)>,
) -> io::Result<Exchange> {
    let client_failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let give_up = || stop.load(Ordering::SeqCst) || client_failed.load(Ordering::SeqCst);
            serve_one(
                listener,
                greeting,
                Some(Instant::now() + ACCEPT_WAIT),
                &give_up,
            )
        });
        let asked = client();
        if asked.is_err() {
            client_failed.store(true, Ordering::SeqCst);
        }
        let served = server
            .join()
            .map_err(|_| io::Error::other("the server thread panicked"))?;
        let (answer, client) = asked?;
        Ok(Exchange {
            answer,
            client,
            seen: served?,
        })
    })
}

/// Serves requests until `stop` is set, calling `served` with each one's source address.
pub fn serve_until(
    listener: &TcpListener,
    greeting: &str,
    stop: &AtomicBool,
    served: impl Fn(io::Result<SocketAddr>),
) {
    let give_up = || stop.load(Ordering::SeqCst);
    while !give_up() {
        match serve_one(listener, greeting, None, &give_up) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            outcome => served(outcome),
        }
    }
}

/// Accepts one connection (waiting until `deadline`, or until `give_up` says so), reads its
/// request and answers `greeting; you came from ADDRESS`. Returns that address.
fn serve_one(
    listener: &TcpListener,
    greeting: &str,
    deadline: Option<Instant>,
    give_up: &dyn Fn() -> bool,
) -> io::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if give_up() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "gave up waiting",
            ));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection came in {} s", ACCEPT_WAIT.as_secs()),
            ));
        }
        std::thread::sleep(POLL);
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    read_head(&mut stream)?;
    let body = format!("{greeting}; you came from {peer}\n");
    let answer = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes())?;
    Ok(peer)
}

/// Reads a request up to the blank line that ends its head.
fn read_head(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if stream.read(&mut byte)? == 0 || head.len() as u64 >= MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the request ended before its blank line",
            ));
        }
        head.push(byte[0]);
    }
    Ok(())
}

/// Sends `GET /` to `to` and returns the answer's line and the client's own address.
pub fn request(to: SocketAddr) -> io::Result<(String, SocketAddr)> {
    let mut stream = TcpStream::connect_timeout(&to, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let local = stream.local_addr()?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {to}\r\n\r\n")?;
    let mut reply = Vec::new();
    stream.take(MAX).read_to_end(&mut reply)?;
    let answer = answer_of(&String::from_utf8_lossy(&reply))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP 200 answer"))?;
    Ok((answer, local))
}

/// The body's first line of an `HTTP/1.x 200` answer.
fn answer_of(reply: &str) -> Option<String> {
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    let ok = status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200");
    ok.then(|| body.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_a_200_only() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
        assert_eq!(answer_of(ok).as_deref(), Some("hello"));
        assert_eq!(answer_of("HTTP/1.0 404 Not Found\r\n\r\nno\n"), None);
        assert_eq!(answer_of("HTTP/1.0 200 OK\r\n"), None, "no end of head");
        assert_eq!(answer_of("SSH-2.0\r\n\r\n"), None);
    }

    /// (It listens on loopback, and nothing connects: no traffic in the machine's namespace.)
    #[test]
    fn a_failed_client_does_not_leave_the_server_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let failed = exchange(&listener, "x", &stop, || {
            Err(io::Error::other("the client could not connect"))
        });
        assert!(failed.is_err());
        assert!(started.elapsed() < ACCEPT_WAIT, "{:?}", started.elapsed());
    }
}
