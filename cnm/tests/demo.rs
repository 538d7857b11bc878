//! `cnm demo`, the README's first command: it runs every step and says what happened, it stops
//! and cleans up when interrupted (at its hold, and right after it starts), and it never leaves
//! a namespace, a directory or a mount behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conformance::require_root;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Longer than the demo ever takes here (under a second); a loaded machine may be slow.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running `cnm demo`: its stdout line by line as it comes, its stderr at the end.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: JoinHandle<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cnm"))
            .arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cnm demo");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Demo {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until one starts with `prefix`; panics with what came if none does in time.
    fn wait_for_line(&mut self, prefix: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.interrupt();
                    panic!("no line {prefix:?} came; output:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    fn interrupt(&self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGINT).expect("send SIGINT");
    }

    /// Waits for the demo to end; returns its status, all of its stdout and its stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.interrupt();
                panic!("the demo did not end; output:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.iter());
        let stderr = self.stderr.join().unwrap();
        (status, self.seen.join("\n") + "\n", stderr)
    }
}

/// What a demo of process `pid` would leave: its host namespace, its state directory (where the
/// containers' namespaces are mounted), and any mount on or under either.
fn left_by(pid: u32) -> Vec<String> {
    let name = format!("cnm-demo-{pid}");
    let host = std::path::Path::new(cnm_core::netns::NETNS_RUN_DIR).join(&name);
    let dir = std::env::temp_dir().join(&name);
    let mut left: Vec<String> = [&host, &dir]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        let point = std::path::Path::new(line.split(' ').nth(4).unwrap());
        if point == host || point.starts_with(&dir) {
            left.push(format!("mount {}", point.display()));
        }
    }
    left
}

/// The address a `[3/8]` line gives a container: `NAME (NAME.cnm.demo): eth0 MAC ADDR/LEN ...`.
fn address_of(out: &str, name: &str) -> String {
    let prefix = format!("      {name} ({name}.cnm.demo): eth0 ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}"));
    let cidr = line[prefix.len()..].split(' ').nth(1).unwrap();
    cidr.split('/').next().unwrap().to_owned()
}

fn assert_has(out: &str, wanted: &str) {
    assert!(out.contains(wanted), "missing {wanted:?} in:\n{out}");
}

#[test]
fn the_demo_runs_every_step_and_leaves_nothing() {
    if !require_root("the_demo_runs_every_step_and_leaves_nothing") {
        return;
    }
    let demo = Demo::start(&[]);
    let pid = demo.pid();
    let (status, out, err) = demo.finish();
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert_eq!(err, "", "nothing on stderr");

    // Every step, in order, each once.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(steps.len(), 8, "{out}");
    for (n, step) in steps.iter().enumerate() {
        assert!(step.starts_with(&format!("[{}/8] ", n + 1)), "{out}");
    }
    assert_has(&out, &format!("/run/netns/cnm-demo-{pid} plays the host"));
    assert_has(&out, "[2/8] network demo, driver bridge");

    // Three containers with an address each; web publishes its port.
    let (web, c1, c2) = (
        address_of(&out, "web"),
        address_of(&out, "client1"),
        address_of(&out, "client2"),
    );
    assert_has(&out, "publishes 0.0.0.0:8080->80/tcp; sandbox key");
    let gateway = {
        let web_line = out.lines().find(|l| l.contains("(web.cnm.demo)")).unwrap();
        let via = web_line.split(" via ").nth(1).unwrap();
        via.split(',').next().unwrap().to_owned()
    };

    // Pings: an echo reply for each pair.
    for (from, to, addr) in [
        ("client1", "web", &web),
        ("client2", "web", &web),
        ("client1", "client2", &c2),
        ("client2", "client1", &c1),
    ] {
        assert_has(&out, &format!("{from} -> {to} {addr}: 64 bytes, icmp_seq="));
    }
    assert_eq!(out.matches(" ttl=64 time=").count(), 4, "{out}");

    // TCP: web's one-line answer to each request, and the source web saw: client1's own
    // address inside the network, the host's (gateway) address through the published port,
    // from the neighbour (hairpin, source-translated) and from the host itself.
    let answer = "answer: hello from web.cnm.demo; you came from";
    assert_eq!(out.matches(answer).count(), 3, "{out}");
    assert_has(&out, &format!("client1 -> {web}:80 (directly)"));
    assert_has(&out, &format!("{answer} {c1}:"));
    assert_has(&out, "client1's own address, not translated");
    assert_has(
        &out,
        &format!("client2 -> {gateway}:8080 (web's published port"),
    );
    assert_has(&out, &format!("web saw {gateway}:"));
    assert_has(
        &out,
        &format!("the host's address, not client2's own {c2}:"),
    );
    assert_has(
        &out,
        &format!("host -> {gateway}:8080 (web's published port"),
    );
    assert_has(&out, "the host's own address, not translated");

    // The table, as `cnm endpoint ls` prints it.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("[6/8]"))
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .collect();
    assert_eq!(table.len(), 4, "{out}");
    assert!(
        table[0].trim_start().starts_with("NETWORK   CONTAINER ID"),
        "{out}"
    );
    for (row, (name, addr)) in
        table[1..]
            .iter()
            .zip([("client1", &c1), ("client2", &c2), ("web", &web)])
    {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], "demo", "{row}");
        assert_eq!(cells[1], name, "{row}");
        assert_eq!(cells[2], "eth0", "{row}");
        assert_eq!(cells[4], format!("{addr}/16"), "{row}");
    }
    assert!(table[3].ends_with("0.0.0.0:8080->80/tcp"), "{out}");

    // Removal in order, then nothing.
    assert_has(&out, "endpoint web left sandbox web and is deleted");
    assert_has(&out, "sandbox client2 is deleted");
    assert_has(
        &out,
        "network demo is deleted; links left in the host namespace: lo\n",
    );
    assert!(out.ends_with("demo: done, nothing left\n"), "{out}");
    assert_eq!(left_by(pid), Vec::<String>::new());
}

#[test]
fn ctrl_c_at_the_hold_removes_everything_and_exits_130() {
    if !require_root("ctrl_c_at_the_hold_removes_everything_and_exits_130") {
        return;
    }
    let mut demo = Demo::start(&["--hold"]);
    let pid = demo.pid();
    demo.wait_for_line("press Ctrl-C to clean up");
    // Holding: the namespaces are there to look at.
    let holding = left_by(pid);
    let host = format!("/run/netns/cnm-demo-{pid}");
    assert!(holding.contains(&host), "{holding:?}");
    assert!(
        holding.iter().any(|l| l.ends_with("/run/netns/web")),
        "{holding:?}"
    );
    demo.interrupt();
    let (status, out, err) = demo.finish();
    assert_eq!(status.code(), Some(130), "{status}\n{out}\n{err}");
    assert_eq!(err, "");
    assert_has(&out, &format!("ip netns exec cnm-demo-{pid} ip addr"));
    assert_has(
        &out,
        "demo: interrupted, cleaning up\ndemo: cleaned up, nothing left\n",
    );
    assert!(!out.contains("[7/8]"), "{out}");
    assert_eq!(left_by(pid), Vec::<String>::new());
}

#[test]
fn ctrl_c_right_after_the_start_removes_everything() {
    if !require_root("ctrl_c_right_after_the_start_removes_everything") {
        return;
    }
    let mut demo = Demo::start(&[]);
    let pid = demo.pid();
    demo.wait_for_line("[1/8]");
    demo.interrupt();
    let (status, out, err) = demo.finish();
    assert_eq!(status.code(), Some(130), "{status}\n{out}\n{err}");
    assert_has(&out, "demo: interrupted, cleaning up\n");
    assert!(out.ends_with("demo: cleaned up, nothing left\n"), "{out}");
    assert_eq!(left_by(pid), Vec::<String>::new());
}
