//! What a batch costs, in a throwaway namespace.

use std::time::{Duration, Instant};

use super::*;

/// Medians of add_network and remove_network (DESTROY and DEL) over 200 rounds; run with
/// `cargo test -p cnm-core --lib measure_ -- --ignored --nocapture`.
#[test]
#[ignore = "measurement: prints timings, asserts nothing about them"]
fn measure_add_and_remove_network() {
    require_root!();
    let ns = netns();
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    let rules = NetworkRules {
        bridge: "cnm-x",
        masq: vec![net("10.66.0.0/24"), net("fd00:66::/64")],
        internal: false,
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut add, mut destroy, mut delete, mut ensure) = (vec![], vec![], vec![], vec![]);
    for i in 0..200 {
        add.push(time(&mut || nft.add_network(&rules).unwrap()));
        let how = if i % 2 == 0 {
            Removal::Destroy
        } else {
            Removal::Delete
        };
        let d = time(&mut || nft.remove_network_by(&rules, how).unwrap());
        if how == Removal::Destroy {
            destroy.push(d)
        } else {
            delete.push(d)
        }
        ensure.push(time(&mut || nft.ensure_table().unwrap()));
    }
    let missing = (0..100)
        .map(|_| time(&mut || nft.remove_network(&rules).unwrap()))
        .collect();
    let (mut refused, mut create, mut delete_table) = (vec![], vec![], vec![]);
    for _ in 0..30 {
        refused.push(time(&mut || {
            nft.commit(&table::create_table_batch()).unwrap_err();
        }));
        delete_table.push(time(&mut || nft.delete_table().unwrap()));
        create.push(time(&mut || nft.ensure_table().unwrap()));
    }
    // The same with 1000 other networks in the sets: the cost must not grow with them.
    for i in 0..1000u32 {
        let n = NetworkRules {
            bridge: &format!("cnm-p{i}"),
            masq: vec![
                IpNet::new([10, 100 + (i / 256) as u8, (i % 256) as u8, 0].into(), 24).unwrap(),
            ],
            internal: i % 2 == 0,
        };
        nft.add_network(&n).unwrap();
    }
    let (mut add_full, mut remove_full) = (vec![], vec![]);
    for _ in 0..200 {
        add_full.push(time(&mut || nft.add_network(&rules).unwrap()));
        remove_full.push(time(&mut || nft.remove_network(&rules).unwrap()));
    }
    eprintln!(
        "with 1000 networks present: add_network {:?}, remove_network {:?}",
        median(add_full),
        median(remove_full)
    );
    eprintln!(
        "add_network {:?}, remove_network DESTROY {:?}, DEL {:?}, DESTROY of missing elements \
         {:?}, ensure_table (exists) {:?}, ensure_table (creates) {:?}, create batch refused \
         (EEXIST) {:?}, delete_table {:?}",
        median(add),
        median(destroy),
        median(delete),
        median(missing),
        median(ensure),
        median(create),
        median(refused),
        median(delete_table),
    );
}
