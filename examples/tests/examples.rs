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
