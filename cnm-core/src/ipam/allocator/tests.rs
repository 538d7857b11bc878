use super::*;
use crate::ipam::config::IpamPlan;
use proptest::prelude::*;
use serde_json::json;

fn set(v: serde_json::Value) -> RangeSetPlan {
    IpamPlan::parse(v.as_object().unwrap())
        .unwrap()
        .sets
        .remove(0)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn taken(addrs: &[&str]) -> HashSet<IpAddr> {
    addrs.iter().map(|a| ip(a)).collect()
}

#[test]
fn skips_gateway_and_goes_round_robin_after_the_cursor() {
    let s = set(json!({"subnet": "10.1.0.0/29"})); // hosts .1-.6, gateway .1
    let none = HashSet::new();
    assert_eq!(allocate(&s, &none, None, None), Ok(ip("10.1.0.2")));
    assert_eq!(
        allocate(&s, &none, Some(ip("10.1.0.2")), None),
        Ok(ip("10.1.0.3"))
    );
    // After the last address the search wraps, still skipping the gateway.
    assert_eq!(
        allocate(&s, &none, Some(ip("10.1.0.6")), None),
        Ok(ip("10.1.0.2"))
    );
    // A just-released address (.3, the cursor) is not handed straight back.
    let t = taken(&["10.1.0.2", "10.1.0.4", "10.1.0.5", "10.1.0.6"]);
    assert_eq!(
        allocate(&s, &t, Some(ip("10.1.0.3")), None),
        Ok(ip("10.1.0.3"))
    );
    assert_eq!(
        allocate(&s, &taken(&["10.1.0.4"]), Some(ip("10.1.0.3")), None),
        Ok(ip("10.1.0.5"))
    );
    // A cursor outside the ranges (config changed) starts from the beginning.
    assert_eq!(
        allocate(&s, &none, Some(ip("192.168.0.9")), None),
        Ok(ip("10.1.0.2"))
    );
}

#[test]
fn walks_across_ranges_of_a_set() {
    let s = set(json!({"ranges": [[
        {"subnet": "10.1.0.0/30"}, {"subnet": "10.2.0.0/30"}]]}));
    let t = taken(&["10.1.0.2"]);
    assert_eq!(
        allocate(&s, &t, Some(ip("10.1.0.2")), None),
        Ok(ip("10.2.0.2"))
    );
    assert_eq!(
        allocate(&s, &HashSet::new(), Some(ip("10.2.0.2")), None),
        Ok(ip("10.1.0.2"))
    );
}

#[test]
fn exhaustion_says_where_and_how_many() {
    let s = set(json!({"subnet": "10.1.0.0/30"}));
    let e = allocate(&s, &taken(&["10.1.0.2", "10.9.9.9"]), None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no free address in 10.1.0.0/30 (range 10.1.0.1-10.1.0.2): 1 in use"
    );
}

#[test]
fn requested_addresses() {
    let plan = IpamPlan::parse(
        json!({"ranges": [
        [{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let req = |s: &str| s.parse::<RequestedIp>().unwrap();
    let got = assign_requests(&plan.sets, &[req("fd00::7"), req("10.1.0.7/24")]).unwrap();
    assert_eq!(got, vec![Some(ip("10.1.0.7")), Some(ip("fd00::7"))]);
    let e = assign_requests(&plan.sets, &[req("10.1.0.7/16")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match its subnet 10.1.0.0/24"), "{e}");
    let e = assign_requests(&plan.sets, &[req("10.2.0.7")]).unwrap_err();
    assert!(matches!(e, AllocError::RequestedOutside { .. }), "{e}");
    let e = assign_requests(&plan.sets, &[req("10.1.0.7"), req("10.1.0.8")]).unwrap_err();
    assert!(matches!(e, AllocError::RequestedTwice { .. }), "{e}");
    let s = &plan.sets[0];
    assert_eq!(
        allocate(s, &HashSet::new(), None, Some(ip("10.1.0.7"))),
        Ok(ip("10.1.0.7"))
    );
    assert_eq!(
        allocate(s, &taken(&["10.1.0.7"]), None, Some(ip("10.1.0.7"))),
        Err(AllocError::RequestedInUse {
            addr: ip("10.1.0.7")
        })
    );
    assert_eq!(
        allocate(s, &HashSet::new(), None, Some(ip("10.1.0.1"))),
        Err(AllocError::RequestedGateway {
            addr: ip("10.1.0.1")
        })
    );
}

#[test]
fn large_ipv6_range_is_not_walked() {
    let s = set(json!({"subnet": "fd00::/64"}));
    assert_eq!(
        allocate(
            &s,
            &HashSet::new(),
            Some(ip("fd00::ffff:ffff:ffff:ffff")),
            None
        ),
        Ok(ip("fd00::2"))
    );
}

proptest! {
    /// The pick is the first free non-gateway address after the cursor in cyclic order, or
    /// exhaustion exactly when there is none.
    #[test]
    fn matches_a_linear_oracle(
        prefix in 26u8..=30,
        taken_bits in proptest::collection::vec(any::<bool>(), 64),
        cursor in proptest::option::of(0u32..64),
    ) {
        let s = set(json!({"subnet": format!("10.7.0.0/{prefix}")}));
        let size = 1u32 << (32 - prefix);
        let host = |i: u32| IpAddr::from([10, 7, 0, i as u8]);
        let taken: HashSet<IpAddr> = (1..size - 1).filter(|i| taken_bits[*i as usize]).map(host).collect();
        let cursor = cursor.map(host);
        let hosts: Vec<IpAddr> = (1..size - 1).map(host).collect();
        let start = cursor
            .and_then(|c| hosts.iter().position(|h| *h == c))
            .map_or(0, |p| p + 1);
        let expected = (0..hosts.len())
            .map(|k| hosts[(start + k) % hosts.len()])
            .find(|a| !taken.contains(a) && !s.is_gateway(*a));
        let got = allocate(&s, &taken, cursor, None);
        match expected {
            Some(a) => prop_assert_eq!(got, Ok(a)),
            None => prop_assert!(matches!(got, Err(AllocError::Exhausted { .. })), "{:?}", got),
        }
    }
}
