//! Runs each example as a user would and checks what it printed and that it left nothing.
//!
//! `cargo test -p cnm-examples` builds the examples before it runs this (a filter naming only
//! this test target, `--test examples`, does not: then `cargo build -p cnm-examples --examples`
//! first). The binaries are found next to this test's executable: it is
//! `target/<profile>/deps/examples-<hash>`, they are `target/<profile>/examples/<name>`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use conformance::require_root;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test executable has a directory");
    let profile = deps.parent().expect("deps/ has a parent");
    let bin = profile.join("examples").join(name);
    assert!(
        bin.is_file(),
        "{} not built: run `cargo test -p cnm-examples` (it builds the examples) or \
         `cargo build -p cnm-examples --examples`",
        bin.display()
    );
    bin
}

/// The rest of the line that starts with `prefix`, or a failure that shows the output.
fn after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
}

/// Mount points in this process's mount namespace (the example's, as it made none of its own).
fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

#[test]
fn namespaces_prints_what_it_made_and_leaves_nothing() {
    let test = "namespaces_prints_what_it_made_and_leaves_nothing";
    if !require_root(test) {
        return;
    }
    let child = Command::new(example("namespaces"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let work = PathBuf::from(after(&stdout, "work directory (temporary): "));
    let host = PathBuf::from(after(&stdout, "host namespace (throwaway): "));
    assert_eq!(
        host,
        Path::new("/run/netns").join(format!("cnmt-{pid}-host"))
    );
    assert_eq!(
        after(&stdout, "network example: "),
        "driver simplebridge, bridge cnm-ex0, 10.89.0.0/24 and fd89::/64"
    );
    let mut made = vec![host, work.clone()];
    for (id, n) in [("c1", 2), ("c2", 3)] {
        let path = PathBuf::from(after(&stdout, &format!("namespace {id}: ")));
        assert_eq!(path, work.join("netns").join(id));
        // The interface line follows its namespace's line.
        let line = stdout
            .lines()
            .skip_while(|l| !l.starts_with(&format!("namespace {id}: ")))
            .nth(1)
            .unwrap_or_default();
        let rest = line
            .strip_prefix("  interface cnp")
            .unwrap_or_else(|| panic!("no interface line after namespace {id}:\n{stdout}"));
        let (src_hex, rest) = rest.split_once(" -> eth0 mac ").expect("src -> dst mac");
        assert_eq!(src_hex.len(), 12, "{line}");
        let (mac, rest) = rest.split_once(' ').expect("mac then addresses");
        assert_eq!(mac.len(), 17, "{line}");
        assert_eq!(
            rest,
            format!("inet 10.89.0.{n}/24 via 10.89.0.1 inet6 fd89::{n}/64 via fd89::1 mtu 1500")
        );
        assert!(stdout.contains(&format!("removed namespace {}\n", path.display())));
        made.push(path);
    }
    for line in [
        "reach: c1 10.89.0.2 -> c2 10.89.0.3: tcp \"ping\" answered \"pong\"",
        "reach: c1 fd89::2 -> c2 fd89::3: tcp \"ping\" answered \"pong\"",
        "unlinked c1",
        "unlinked c2",
        "deleted network example",
        "done: every namespace, link, mount and file it made is gone",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }

    // Nothing is left: no file, no mount, no named namespace of the example.
    for path in &made {
        assert!(!path.exists(), "{} is left", path.display());
    }
    let mounts = mount_points();
    for path in &made {
        let p = path.to_str().expect("UTF-8 path");
        let inside = |m: &&String| m.as_str() == p || m.starts_with(&format!("{p}/"));
        let left: Vec<&String> = mounts.iter().filter(inside).collect();
        assert!(left.is_empty(), "mounts left under {p}: {left:?}");
    }
    let prefix = format!("cnmt-{pid}-");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "named namespaces left: {left:?}");
}

/// Runs an example to the end; its pid and what it printed. It must succeed.
fn run(name: &str) -> (u32, String) {
    let child = Command::new(example(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, stdout)
}

/// A model example ran in `Scratch::new(label)`: its host namespace, its state directory and
/// every sandbox mount under it are gone.
fn assert_scratch_gone(label: &str, pid: u32, stdout: &str) {
    let host = PathBuf::from(after(stdout, "host namespace (throwaway): "));
    assert_eq!(
        host,
        Path::new("/run/netns").join(format!("cnm-{label}-{pid}"))
    );
    assert!(!host.exists(), "{} is left", host.display());
    let dir = std::env::temp_dir().join(format!("cnm-{label}-{pid}"));
    assert!(!dir.exists(), "{} is left", dir.display());
    let d = dir.to_str().expect("UTF-8 path");
    let left: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(d) || m.as_str() == host.to_str().unwrap())
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// A MAC address as the kernel prints it.
fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.split(':')
            .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok())
}

/// Checks `Joined endpoint Endpoint1 (<mac>) to <what> container1 (<key>)`, the key being the
/// namespace of container1 under the Scratch of `label`.
fn joined_line(stdout: &str, what: &str, label: &str, pid: u32) {
    let line = after(stdout, "Joined endpoint Endpoint1 (");
    let (mac, rest) = line
        .split_once(&format!(") to {what} container1 ("))
        .unwrap_or_else(|| panic!("not the joined line: {line}"));
    assert!(is_mac(mac), "{line}");
    let key = rest.strip_suffix(')').expect("closing parenthesis");
    let expected = std::env::temp_dir().join(format!("cnm-{label}-{pid}/run/netns/container1"));
    assert_eq!(Path::new(key), expected);
}

#[test]
fn the_libnetwork_readme_example_joins_and_leaves_nothing() {
    if !require_root("the_libnetwork_readme_example_joins_and_leaves_nothing") {
        return;
    }
    let (pid, stdout) = run("readme");
    joined_line(&stdout, "sandbox", "readme", pid);
    assert_scratch_gone("readme", pid, &stdout);
}

#[test]
fn join_by_container_id_reports_the_port_map_and_leaves_nothing() {
    if !require_root("join_by_container_id_reports_the_port_map_and_leaves_nothing") {
        return;
    }
    let (pid, stdout) = run("join_container");
    joined_line(&stdout, "container", "join", pid);
    assert_eq!(after(&stdout, "exposed: "), "80/tcp");
    assert_eq!(after(&stdout, "port map: "), "0.0.0.0:8080->80/tcp");
    assert_eq!(after(&stdout, "address: "), "10.88.0.2/24");
    assert_scratch_gone("join", pid, &stdout);
}

#[test]
fn two_containers_talk_directly_and_through_the_published_port() {
    if !require_root("two_containers_talk_directly_and_through_the_published_port") {
        return;
    }
    let (pid, stdout) = run("ports");
    let web = after(&stdout, "endpoint web: eth0 ");
    assert!(
        web.ends_with(" 10.87.0.2/24 ports [0.0.0.0:8080->80/tcp]"),
        "{web}"
    );
    let client = after(&stdout, "endpoint client: eth0 ");
    assert!(client.ends_with(" 10.87.0.3/24 ports []"), "{client}");
    // Direct traffic keeps its source; traffic from the host through the published port is
    // seen from the gateway (the host's address on the bridge).
    let direct = after(&stdout, "client -> 10.87.0.2:80: ");
    assert!(
        direct.starts_with("hello from web (web saw 10.87.0.3:"),
        "{direct}"
    );
    let published = after(&stdout, "host -> 10.87.0.1:8080: ");
    assert!(
        published.starts_with("hello from web (web saw 10.87.0.1:"),
        "{published}"
    );
    assert!(stdout.contains("removed: endpoints, sandboxes, network\n"));
    assert_scratch_gone("ports", pid, &stdout);
}
