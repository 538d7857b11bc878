//! `cnm demo`: the model at work, inside throwaway namespaces only. A [`Scratch`] host namespace
//! gets a bridge network and three containers (`web`, which publishes port 8080 → 80/tcp,
//! `client1`, `client2`); they ping each other from raw sockets, make HTTP requests directly
//! and through the published port, the endpoints are listed as `cnm endpoint ls` does, and
//! everything is removed again, step by step, then the host namespace itself.
//!
//! On Ctrl-C (or SIGTERM, SIGHUP), a failure or a panic, the flow returns early and the
//! `Scratch` is dropped, which deletes every sandbox, the namespace (with the bridge and the
//! firewall rules in it) and the state directory. The demo then checks that none of them is
//! left before it says so.

mod flow;
mod ping;
mod signals;
mod tcp;
mod traffic;

use std::error::Error;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use cnm_core::model::Scratch;

use crate::Outcome;

/// Shows Docker's Container Network Model at work, inside throwaway network namespaces only.
#[derive(clap::Args)]
pub struct Args {
    /// After the table, keep everything (web keeps answering) until Ctrl-C, to look around.
    #[arg(long)]
    hold: bool,
}

/// The demo was interrupted (Ctrl-C, SIGTERM, SIGHUP); everything it made is removed.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl Error for Interrupted {}

/// Errors that cross from the host namespace's thread back to the main one.
type Fallible<T> = Result<T, Box<dyn Error + Send + Sync>>;

const STEPS: usize = 8;
/// Detail lines are indented under their step.
const INDENT: &str = "      ";

/// Runs the demo; must be called on the main thread before any other thread is started.
pub fn run(args: &Args) -> Outcome {
    if !nix::unistd::geteuid().is_root() {
        return Err("the demo needs root: it creates network namespaces (try sudo)".into());
    }
    let interrupted = signals::watch()?;
    say("cnm demo: a bridge network and three containers, inside throwaway namespaces only");
    let mut progress = Progress {
        done: 0,
        interrupted: &interrupted,
    };
    progress.announce("a throwaway host: a network namespace and a state directory");
    let scratch = Scratch::new("demo").map_err(|e| format!("making the throwaway host: {e}"))?;
    let made = Made {
        host: scratch.host().path().to_owned(),
        dir: scratch.dir().to_owned(),
    };
    detail(&format!(
        "{} plays the host; the controller's state and the containers' namespaces are in {}",
        made.host.display(),
        made.dir.display()
    ));
    let outcome = scratch
        .host()
        .run(|| flow::in_host(&scratch, &mut progress, args.hold))
        .map_err(Into::into)
        .and_then(|flow| flow);
    match &outcome {
        Ok(()) => progress.announce("removing the throwaway host namespace and state directory"),
        Err(e) if e.is::<Interrupted>() => say("demo: interrupted, cleaning up"),
        Err(_) => say("demo: failed, cleaning up"),
    }
    drop(scratch);
    let left = made.leftovers();
    if !left.is_empty() {
        return Err(format!("left behind: {}", left.join(", ")).into());
    }
    match outcome {
        Ok(()) => {
            say("demo: done, nothing left");
            Ok(())
        }
        Err(e) => {
            say("demo: cleaned up, nothing left");
            Err(e)
        }
    }
}

/// Numbered progress lines; each step first looks whether the demo was interrupted.
struct Progress<'a> {
    done: usize,
    interrupted: &'a AtomicBool,
}

impl Progress<'_> {
    /// Starts the next step, unless the demo was interrupted.
    fn step(&mut self, what: &str) -> Fallible<()> {
        self.check()?;
        self.announce(what);
        Ok(())
    }

    /// Prints the next step's line.
    fn announce(&mut self, what: &str) {
        self.done += 1;
        say(&format!("[{}/{STEPS}] {what}", self.done));
    }

    /// `Interrupted` once the flag is up.
    fn check(&self) -> Fallible<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        Ok(())
    }
}

/// What the demo made outside its own process: the host namespace's mount and the directory.
struct Made {
    host: PathBuf,
    dir: PathBuf,
}

impl Made {
    /// What of it still exists: the files, and mounts on or under them.
    fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = [&self.host, &self.dir]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mountinfo.lines() {
            // Field 5 is the mount point (paths here have no characters that it escapes).
            let Some(point) = line.split(' ').nth(4).map(Path::new) else {
                continue;
            };
            if point == self.host || point.starts_with(&self.dir) {
                left.push(format!("a mount on {}", point.display()));
            }
        }
        left
    }
}

/// Prints a line now (a closed stdout does not stop the demo: it still cleans up).
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Prints a detail line under the current step.
fn detail(line: &str) {
    say(&format!("{INDENT}{line}"));
}
