//! The README's first command (`cargo run -p conformance --example demo`) works and cleans up.

use std::process::Command;

use conformance::{cnm_plugin_dir, require_plugins, require_root};

fn netns_names() -> Vec<String> {
    std::fs::read_dir(cnm_core::netns::NETNS_RUN_DIR)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_demo_runs_and_leaves_nothing() {
    let test = "the_demo_runs_and_leaves_nothing";
    let demo = cnm_plugin_dir().join("examples").join("demo");
    if !require_root(test) || !require_plugins(test, &cnm_plugin_dir(), &["cnm-bridge", "cnm-ipam"])
    {
        return;
    }
    assert!(
        demo.is_file(),
        "{} not built (cargo test builds examples)",
        demo.display()
    );
    let child = Command::new(&demo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The demo's namespaces are named cnmt-<its pid>-...: none of them may be left.
    let prefix = format!("cnmt-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "c1 -> 10.77.0.3: reply",
        "c2 -> 10.77.0.2: reply",
        "c1 saw the connection from 10.77.0.3:",
        "the outside host saw 198.18.0.1:",
        "CHECK c2: ok",
        "demo: done",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left by the demo: {left:?}");
}
