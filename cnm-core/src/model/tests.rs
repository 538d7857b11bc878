//! The model end to end in throwaway namespaces: the "host" is one too, and the controller's
//! state lives in a temporary directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::*;

/// A [`Scratch`] host whose closures get a controller by value and may panic; its drop (also
/// after a failed assertion) deletes every sandbox, then the namespace and the directory.
struct Lab(Scratch);

impl Lab {
    fn new() -> Option<Lab> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (creates network namespaces and links)");
            return None;
        }
        Some(Lab(Scratch::new("model-test").unwrap()))
    }

    /// Runs `f` with the host namespace as the calling thread's.
    fn run<T: Send>(&self, f: impl FnOnce(Controller) -> T + Send) -> T {
        let config = self.0.controller_config();
        self.0
            .host()
            .run(move || f(Controller::new(config).unwrap()))
            .unwrap()
    }
}

fn addr_of(info: &DriverInfo) -> std::net::IpAddr {
    info.addresses[0].addr()
}

#[test]
fn two_sandboxes_talk_and_everything_goes() {
    let Some(lab) = Lab::new() else { return };
    lab.run(|c| {
        let net = c
            .new_network(
                "bridge",
                "network1",
                NetworkOptions::default().ipv4("10.231.0.0/24".parse().unwrap()),
            )
            .unwrap();
        let mut ep1 = net
            .create_endpoint(
                "Endpoint1",
                EndpointOptions::default().publish(PortBinding::tcp(8080, 80)),
            )
            .unwrap();
        let mut ep2 = net
            .create_endpoint("Endpoint2", EndpointOptions::default())
            .unwrap();
        let opts = SandboxOptions::default()
            .hostname("test")
            .domainname("docker.io");
        let s1 = c.new_sandbox("container1", opts).unwrap();
        let s2 = c
            .new_sandbox("container2", SandboxOptions::default())
            .unwrap();
        assert!(matches!(
            c.new_sandbox("container1", SandboxOptions::default()),
            Err(crate::Error::Model(ModelError::SandboxExists(_)))
        ));
        ep1.join(&s1).unwrap();
        ep2.join(&s2).unwrap();
        assert!(ep1.join(&s1).is_err(), "a second join is refused");
        ep1.verify().unwrap();

        let info = ep1.driver_info().unwrap();
        assert_eq!(info.ifname, "eth0");
        assert_eq!(info.mac.as_deref().map(str::len), Some(17));
        assert_eq!(
            info.gateways,
            vec!["10.231.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(info.port_map, vec![PortBinding::tcp(8080, 80)]);
        assert_eq!(info.sandbox_key, s1.key());
        let hosts = std::fs::read_to_string(s1.hosts_path()).unwrap();
        assert!(
            hosts.contains(&format!("{}\ttest.docker.io test\n", addr_of(&info))),
            "{hosts}"
        );

        // container2 → container1 directly, and the host → container1 through the published
        // port on the gateway address.
        let a1 = addr_of(&info);
        let listener = s1.run(|| TcpListener::bind("0.0.0.0:80").unwrap()).unwrap();
        let gw: std::net::IpAddr = "10.231.0.1".parse().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| s2.run(move || echo_once(SocketAddr::new(a1, 80))).unwrap());
            serve_once(&listener);
            s.spawn(move || echo_once(SocketAddr::new(gw, 8080)));
            serve_once(&listener);
        });

        // The store holds both endpoints under the network, as a CNI ADD would have made them.
        let keys: Vec<String> = net
            .endpoints()
            .unwrap()
            .iter()
            .map(|e| e.key.to_string())
            .collect();
        assert_eq!(
            keys,
            ["network1/container1/eth0", "network1/container2/eth0"]
        );
        assert!(matches!(
            c.network("network1").unwrap().delete(),
            Err(crate::Error::Model(ModelError::NetworkInUse {
                count: 2,
                ..
            }))
        ));

        ep1.leave(&s1).unwrap();
        let hosts = std::fs::read_to_string(s1.hosts_path()).unwrap();
        assert!(!hosts.contains("test.docker.io"), "{hosts}");
        ep1.delete().unwrap();
        let key2 = s2.key().to_owned();
        s2.delete().unwrap(); // leaves Endpoint2 on the way
        assert!(!key2.exists());
        drop(ep2);
        s1.delete().unwrap();
        net.delete().unwrap();
        assert!(c.networks().unwrap().is_empty());
        let mut h = crate::netlink::Handle::new().unwrap();
        let left: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(left, ["lo"], "the bridge goes with the last endpoint");
    });
}

fn echo_once(to: SocketAddr) {
    let mut s = TcpStream::connect(to).unwrap();
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

fn serve_once(l: &TcpListener) {
    let (mut s, _) = l.accept().unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").unwrap();
}

#[test]
fn bad_input_is_refused_before_anything_is_made() {
    let Some(lab) = Lab::new() else { return };
    lab.run(|c| {
        let err = c
            .new_network("nosuch", "n1", NetworkOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("bridge, macvlan"), "{err}");
        let err = c
            .new_network(
                "bridge",
                "n1",
                NetworkOptions::default().driver_option("mtu", 5),
            )
            .unwrap_err();
        assert!(err.to_string().contains("mtu"), "{err}");
        assert!(
            c.networks().unwrap().is_empty(),
            "a refused network is not stored"
        );
        let net = c
            .new_network("bridge", "n1", NetworkOptions::default())
            .unwrap();
        assert_eq!(net.subnets()[0].to_string(), "172.18.0.0/16");
        assert!(matches!(
            c.new_network("bridge", "n1", NetworkOptions::default()),
            Err(crate::Error::Model(ModelError::NetworkExists(_)))
        ));
        let second = c
            .new_network("bridge", "n2", NetworkOptions::default())
            .unwrap();
        assert_eq!(second.subnets()[0].to_string(), "172.19.0.0/16");
        // A subnet inside another network's is refused, and nothing is stored.
        let err = c
            .new_network(
                "bridge",
                "n3",
                NetworkOptions::default().ipv4("172.18.5.0/24".parse().unwrap()),
            )
            .unwrap_err();
        assert_eq!(err.code(), crate::cni::ErrorCode::InvalidConfig);
        assert!(
            err.to_string()
                .contains("overlaps 172.18.0.0/16 of network n1"),
            "{err}"
        );
        assert_eq!(c.networks().unwrap().len(), 2);
        assert!(c
            .new_sandbox("../escape", SandboxOptions::default())
            .is_err());
        let ep = net
            .create_endpoint("e", EndpointOptions::default())
            .unwrap();
        assert!(matches!(
            ep.driver_info(),
            Err(crate::Error::Model(ModelError::NotJoined(_)))
        ));
        // A host-network endpoint cannot join a sandbox of its own, nor a bridge one the host's.
        let host = c
            .new_network("host", "host", NetworkOptions::default())
            .unwrap();
        let own = c.new_sandbox("c1", SandboxOptions::default()).unwrap();
        let mut hep = host
            .create_endpoint("h", EndpointOptions::default())
            .unwrap();
        assert!(matches!(
            hep.join(&own),
            Err(crate::Error::Model(ModelError::HostSandboxOnly(_)))
        ));
        let hs = c
            .new_sandbox("c2", SandboxOptions::default().use_host_namespace())
            .unwrap();
        hep.join(&hs).unwrap();
        let mut bep = net
            .create_endpoint("b", EndpointOptions::default())
            .unwrap();
        assert!(bep.join(&hs).is_err());
        hep.leave(&hs).unwrap();
        hs.delete().unwrap();
        own.delete().unwrap();
        for n in c.networks().unwrap() {
            n.delete().unwrap();
        }
    });
}

/// A veth pair in the calling thread's namespace, both ends up: a "physical" device.
fn veth_pair(name: &str, peer: &str) {
    let mut h = crate::netlink::Handle::new().unwrap();
    h.create_veth(&crate::netlink::VethSpec {
        name,
        peer_name: peer,
        up: true,
        ..Default::default()
    })
    .unwrap();
    let index = h.link_by_name(peer).unwrap().unwrap().index;
    h.set_up(index).unwrap();
}

fn link_names(sandbox: &Sandbox) -> Vec<String> {
    let mut h = crate::netlink::Handle::new_in(&sandbox.netns().unwrap()).unwrap();
    let mut names: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

#[test]
fn null_macvlan_and_host_device_drivers_through_the_library() {
    let Some(lab) = Lab::new() else { return };
    lab.run(|c| {
        // null: the sandbox has its loopback up and nothing else.
        let none = c
            .new_network("null", "none", NetworkOptions::default())
            .unwrap();
        let s0 = c
            .new_sandbox("isolated", SandboxOptions::default())
            .unwrap();
        let mut ep0 = none
            .create_endpoint("lo", EndpointOptions::default())
            .unwrap();
        ep0.join(&s0).unwrap();
        let info = ep0.driver_info().unwrap();
        assert_eq!(info.ifname, "lo");
        assert!(
            info.addresses.contains(&"127.0.0.1/8".parse().unwrap()),
            "{info:?}"
        );
        assert_eq!(link_names(&s0), ["lo"]);
        ep0.verify().unwrap();

        // macvlan: two containers on one master talk to each other.
        veth_pair("mvmaster", "mvpeer");
        let mv = c
            .new_network(
                "macvlan",
                "mv",
                NetworkOptions::default()
                    .ipv4("10.230.0.0/24".parse().unwrap())
                    .driver_option("master", "mvmaster")
                    .driver_option("mode", "bridge"),
            )
            .unwrap();
        let (s1, s2) = (
            c.new_sandbox("m1", SandboxOptions::default()).unwrap(),
            c.new_sandbox("m2", SandboxOptions::default()).unwrap(),
        );
        let mut e1 = mv
            .create_endpoint("e1", EndpointOptions::default())
            .unwrap();
        let mut e2 = mv
            .create_endpoint("e2", EndpointOptions::default())
            .unwrap();
        e1.join(&s1).unwrap();
        e2.join(&s2).unwrap();
        let a1 = addr_of(&e1.driver_info().unwrap());
        let listener = s1.run(|| TcpListener::bind("0.0.0.0:80").unwrap()).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| s2.run(move || echo_once(SocketAddr::new(a1, 80))).unwrap());
            serve_once(&listener);
        });
        assert_eq!(link_names(&s1), ["eth0", "lo"]);

        // host-device: the host's device moves in as eth0, and back under its name on leave.
        veth_pair("hostdev0", "hostdev0p");
        let hd = c
            .new_network(
                "host-device",
                "hd",
                NetworkOptions::default()
                    .ipv4("10.229.0.0/24".parse().unwrap())
                    .driver_option("device", "hostdev0"),
            )
            .unwrap();
        let s3 = c.new_sandbox("h1", SandboxOptions::default()).unwrap();
        let mut e3 = hd
            .create_endpoint("e3", EndpointOptions::default())
            .unwrap();
        e3.join(&s3).unwrap();
        assert_eq!(link_names(&s3), ["eth0", "lo"]);
        let mut h = crate::netlink::Handle::new().unwrap();
        assert!(h.link_by_name("hostdev0").unwrap().is_none());
        e3.leave(&s3).unwrap();
        assert!(h.link_by_name("hostdev0").unwrap().is_some(), "returned");
        assert_eq!(link_names(&s3), ["lo"]);

        for s in c.sandboxes().unwrap() {
            s.delete().unwrap();
        }
        for n in c.networks().unwrap() {
            n.delete().unwrap();
        }
        assert!(c.networks().unwrap().is_empty());
        drop((e1, e2));
    });
}
