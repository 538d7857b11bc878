//! Many plugin processes at once, GC and STATUS, through the CNI protocol in throwaway namespaces.

mod cnm_bridge_setup;

use std::collections::HashSet;
use std::net::IpAddr;

use cnm_bridge_setup::*;
use cnm_core::store::{SqliteStore, Store};
use conformance::{link_names, ping, Attachment, Container};
use serde_json::{json, Value};

/// Every stored endpoint has its veth on the host, and every cnm veth has a stored endpoint.
fn assert_store_matches_kernel(s: &Setup) {
    let stored = if s.store_dir().join("cnm.db").exists() {
        let store = SqliteStore::open(&s.store_dir()).unwrap();
        store.endpoints(None).unwrap()
    } else {
        Vec::new()
    };
    let veths: HashSet<String> = s
        .host_links()
        .into_iter()
        .filter(|l| l.starts_with("cnm"))
        .collect();
    let recorded: HashSet<String> = stored
        .iter()
        .map(|e| e.data["hostVeth"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(veths, recorded, "store and kernel disagree");
}

#[test]
fn sixty_four_parallel_adds_into_a_pool_of_thirty() {
    let Some(s) = Setup::new("sixty_four_parallel_adds_into_a_pool_of_thirty") else {
        return;
    };
    // .2 to .31: thirty addresses.
    let ipam = json!({"type": "cnm-ipam", "dataDir": s.store_dir(), "ranges": [[{
        "subnet": "10.89.0.0/26", "rangeStart": "10.89.0.2", "rangeEnd": "10.89.0.31"}]]});
    let list = s.list("1.1.0", ipam, json!({}));
    let cs: Vec<Container> = (0..64)
        .map(|i| Container::new(&format!("x{i}")).unwrap())
        .collect();
    let outcomes: Vec<Result<Value, conformance::Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cs
            .iter()
            .map(|c| scope.spawn(|| s.runtime.add_network_list(&list, &c.runtime_conf("eth0"))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addrs = HashSet::new();
    let mut refused = 0;
    for (c, o) in cs.iter().zip(&outcomes) {
        match o {
            Ok(r) => assert!(addrs.insert(addr_of(r, true)), "address handed out twice"),
            Err(e) => {
                assert_eq!(code(e), 102, "{e}");
                assert!(e.to_string().contains("no free address"), "{e}");
                assert_eq!(link_names(c.netns()).unwrap(), ["lo"], "half-made: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!((addrs.len(), refused), (30, 34));
    assert_eq!(s.stored_endpoints(), 30);
    assert_store_matches_kernel(&s);
    // The survivors work.
    let first = outcomes.iter().flatten().next().unwrap();
    let winner = cs.iter().zip(&outcomes).find(|(_, o)| o.is_ok()).unwrap().0;
    assert!(ping(winner.netns(), addr_of(first, true)));
    assert!(ping(winner.netns(), "10.89.0.1".parse::<IpAddr>().unwrap()));

    // Mixed: DEL everything, CHECK the survivors and ADD the refused, all at once.
    std::thread::scope(|scope| {
        for (c, o) in cs.iter().zip(&outcomes) {
            let (list, rt) = (&list, c.runtime_conf("eth0"));
            let rt_ = &s.runtime;
            let ok = o.is_ok();
            scope.spawn(move || {
                if ok {
                    let _ = rt_.check_network_list(list, &rt);
                    rt_.del_network_list(list, &rt).unwrap();
                } else {
                    let _ = rt_.add_network_list(list, &rt);
                }
            });
        }
    });
    assert_store_matches_kernel(&s);
    std::thread::scope(|scope| {
        for c in &cs {
            let (list, rt, rt_) = (&list, c.runtime_conf("eth0"), &s.runtime);
            scope.spawn(move || rt_.del_network_list(list, &rt).unwrap());
        }
    });
    assert_eq!(s.stored_endpoints(), 0);
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the veths are gone, the bridge stays until GC"
    );
    s.runtime.gc_network_list(&list, &[]).unwrap();
    assert_eq!(s.host_links(), Vec::<String>::new(), "GC took the bridge");
}

#[test]
fn gc_removes_what_is_not_valid_and_keeps_what_is() {
    let Some(s) = Setup::new("gc_removes_what_is_not_valid_and_keeps_what_is") else {
        return;
    };
    let list = s.list("1.1.0", s.cnm_ipam("10.88.0.0/24"), json!({}));
    let cs: Vec<Container> = (0..3)
        .map(|i| Container::new(&format!("g{i}")).unwrap())
        .collect();
    for c in &cs {
        s.runtime
            .add_network_list(&list, &c.runtime_conf("eth0"))
            .unwrap();
    }
    let keep = Attachment {
        container_id: cs[0].id().to_owned(),
        ifname: "eth0".into(),
    };
    s.runtime.gc_network_list(&list, &[keep]).unwrap();
    assert_eq!(s.stored_endpoints(), 1);
    assert_store_matches_kernel(&s);
    assert!(
        ping(cs[0].netns(), "10.88.0.1".parse().unwrap()),
        "the kept one works"
    );
    for c in &cs[1..] {
        assert_eq!(link_names(c.netns()).unwrap(), ["lo"]);
    }
    s.runtime.gc_network_list(&list, &[]).unwrap();
    assert_eq!(s.stored_endpoints(), 0);
    assert_eq!(
        s.host_links(),
        Vec::<String>::new(),
        "the bridge went with GC's last endpoint"
    );
}

#[test]
fn status_says_ready_or_why_not() {
    let Some(s) = Setup::new("status_says_ready_or_why_not") else {
        return;
    };
    let list = s.list("1.1.0", s.cnm_ipam("10.87.0.0/24"), json!({}));
    s.runtime.status_network_list(&list).unwrap();
    // A store directory that cannot be one: a regular file in its place.
    let blocked = s.host.state_dir().join("not-a-dir");
    std::fs::write(&blocked, "x").unwrap();
    let broken = s.list(
        "1.1.0",
        json!({"type": "cnm-ipam", "subnet": "10.87.0.0/24", "dataDir": blocked}),
        json!({"dataDir": blocked}),
    );
    let err = s.runtime.status_network_list(&broken).unwrap_err();
    assert_eq!(code(&err), 50, "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
