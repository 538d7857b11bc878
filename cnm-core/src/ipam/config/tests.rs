use super::*;
use serde_json::json;

fn parse(v: Value) -> Result<IpamPlan, IpamConfigError> {
    IpamPlan::parse(v.as_object().expect("test configs are objects"))
}

fn err(v: Value) -> String {
    parse(v).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn legacy_flat_range_gets_host_local_defaults() {
    let p = parse(json!({"type": "cnm-ipam", "subnet": "10.1.0.0/24"})).unwrap();
    let r = &p.sets[0].ranges[0];
    assert_eq!(r.subnet.to_string(), "10.1.0.0/24");
    assert_eq!(
        (r.start, r.end, r.gateway),
        (ip("10.1.0.1"), ip("10.1.0.254"), ip("10.1.0.1"))
    );
    assert_eq!(p.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    let p = parse(json!({"subnet": "fd00::/120"})).unwrap();
    assert_eq!(
        p.sets[0].ranges[0].end,
        ip("fd00::ff"),
        "IPv6 has no broadcast"
    );
}

#[test]
fn dual_stack_sets_with_routes_dns_and_data_dir() {
    let p = parse(json!({
        "ranges": [
            [{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20"},
             {"subnet": "10.2.0.0/24", "gateway": "10.2.0.254"}],
            [{"subnet": "fd00::/64"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
        "dns": {"nameservers": ["10.1.0.1"]},
        "dataDir": "/tmp/x"
    }))
    .unwrap();
    assert_eq!(p.sets.len(), 2);
    assert_eq!(p.sets[0].ranges[1].gateway, ip("10.2.0.254"));
    assert!(p.sets[0].is_gateway(ip("10.2.0.254")));
    assert_eq!(
        p.sets[0]
            .range_for(ip("10.1.0.15"))
            .unwrap()
            .subnet
            .to_string(),
        "10.1.0.0/24"
    );
    assert!(p.sets[0].range_for(ip("10.1.0.21")).is_none());
    assert_eq!(p.routes.len(), 2);
    assert_eq!(p.dns.nameservers, ["10.1.0.1"]);
    assert_eq!(p.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(p.subnets().len(), 3);
}

#[test]
fn flat_range_next_to_ranges_comes_first() {
    let p = parse(json!({"subnet": "10.9.0.0/24", "ranges": [[{"subnet": "fd00::/64"}]]})).unwrap();
    assert_eq!(p.sets[0].ranges[0].subnet.to_string(), "10.9.0.0/24");
    assert_eq!(p.sets.len(), 2);
}

#[test]
fn errors_name_the_field_and_the_right_value() {
    let e = err(json!({"subnet": "10.1.0.1/24"}));
    assert!(
        e.contains("ipam.subnet 10.1.0.1/24") && e.contains("write 10.1.0.0/24"),
        "{e}"
    );
    let e = err(json!({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.3.0.7/16"}]]}));
    assert!(
        e.contains("ipam.ranges[0][1].subnet") && e.contains("10.3.0.0/16"),
        "{e}"
    );
    let e = err(json!({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}));
    assert!(
        e.contains("ipam.gateway 10.2.0.1") && e.contains("10.1.0.1-10.1.0.254"),
        "{e}"
    );
    let e = err(json!({"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.255"}));
    assert!(
        e.contains("ipam.rangeEnd 10.1.0.255 is not a usable host"),
        "{e}"
    );
    let e = err(json!({"subnet": "10.1.0.0/24", "rangeStart": "fd00::1"}));
    assert!(e.contains("ipam.rangeStart"), "{e}");
    let e = err(json!({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.8"}));
    assert!(
        e.contains("rangeStart 10.1.0.9 is after rangeEnd 10.1.0.8"),
        "{e}"
    );
    for small in ["10.1.0.0/31", "10.1.0.1/32", "fd00::/127"] {
        let e = err(json!({"subnet": small}));
        assert!(
            e.contains("no usable host") || e.contains("host bits"),
            "{small}: {e}"
        );
    }
    let e = err(json!({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]}));
    assert!(e.contains("ipam.ranges[0] mixes IPv4 and IPv6"), "{e}");
    let e = err(json!({"ranges": [[]]}));
    assert!(e.contains("ipam.ranges[0] is empty"), "{e}");
    assert!(matches!(
        parse(json!({"type": "x"})),
        Err(IpamConfigError::NoRanges)
    ));
    let e = err(json!({"subnet": "nope"}));
    assert!(e.contains("ipam.subnet"), "{e}");
    let e =
        err(json!({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "fd00::1"}]}));
    assert!(e.contains("ipam.routes[0]"), "{e}");
}

#[test]
fn overlaps_anywhere_in_the_config() {
    let e = err(json!({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/16"}]]}));
    assert!(
        e.contains("ipam.ranges[0][0]") && e.contains("ipam.ranges[1][0]"),
        "{e}"
    );
    let e = err(json!({"subnet": "10.1.0.0/24",
        "ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100"}]]}));
    assert!(e.contains("overlaps"), "{e}");
    // Disjoint slices of one subnet are fine, as in host-local.
    parse(json!({"ranges": [
        [{"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.99"}],
        [{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100"}]]}))
    .unwrap();
}

#[test]
fn data_dir_must_be_absolute_without_dotdot() {
    let e = err(json!({"subnet": "10.1.0.0/24", "dataDir": "relative/dir"}));
    assert!(e.contains("not an absolute path"), "{e}");
    let e = err(json!({"subnet": "10.1.0.0/24", "dataDir": "/var/lib/../../etc"}));
    assert!(e.contains("\"..\""), "{e}");
}
