//! The steps inside the host namespace: the network, the containers, the traffic between
//! them, the table, and the removal, in order.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use cnm_core::inventory::Inventory;
use cnm_core::model::{
    Controller, Endpoint, EndpointOptions, Network, NetworkOptions, PortBinding, Sandbox,
    SandboxOptions, Scratch,
};

use super::{detail, traffic, Fallible, Progress};

pub(super) const NETWORK: &str = "demo";
pub(super) const DOMAIN: &str = "cnm.demo";
const CONTAINERS: [&str; 3] = ["web", "client1", "client2"];
pub(super) const HOST_PORT: u16 = 8080;
pub(super) const WEB_PORT: u16 = 80;

/// Everything between making the host and removing it, on a thread inside the host namespace.
pub(super) fn in_host(scratch: &Scratch, progress: &mut Progress, hold: bool) -> Fallible<()> {
    let controller = Controller::new(scratch.controller_config())?;
    progress.step(&format!("network {NETWORK}, driver bridge"))?;
    let network = controller.new_network("bridge", NETWORK, NetworkOptions::default())?;
    let subnets: Vec<String> = network.subnets().iter().map(|s| s.to_string()).collect();
    let bridge = network.config().as_map().get("bridge");
    detail(&format!(
        "subnet {} (the first free default pool), bridge {} (made when the first endpoint joins)",
        subnets.join(", "),
        bridge.and_then(serde_json::Value::as_str).unwrap_or("?")
    ));

    progress.step("containers: a sandbox each, and an endpoint on demo joined to it")?;
    let mut containers = Vec::new();
    for name in CONTAINERS {
        progress.check()?;
        containers.push(Container::create(&controller, &network, name)?);
    }
    let [web, client1, client2] = &containers[..] else {
        unreachable!("three containers");
    };
    let gateway = match web.endpoint.driver_info()?.gateways.first() {
        Some(IpAddr::V4(gw)) => *gw,
        _ => return Err("web's endpoint has no IPv4 gateway".into()),
    };

    progress.step("ping: ICMP echo from a raw socket inside each client")?;
    for (from, to) in [
        (client1, web),
        (client2, web),
        (client1, client2),
        (client2, client1),
    ] {
        traffic::ping(progress, from, to)?;
    }

    progress.step(&format!(
        "TCP: web answers one line on port {WEB_PORT}, published on the host's port {HOST_PORT}"
    ))?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, WEB_PORT));
    let web_server = traffic::Server {
        listener: web.sandbox.run(|| TcpListener::bind(any))??,
        greeting: format!("hello from {}.{DOMAIN}", web.name),
    };
    traffic::requests(progress, &web_server, [web, client1, client2], gateway)?;

    progress.step("the endpoints, as `cnm endpoint ls` lists them")?;
    let inventory = Inventory::open(&controller.config().data_dir)?;
    for line in crate::endpoint::table(&inventory.endpoints(None)?).lines() {
        detail(line);
    }
    if hold {
        traffic::hold_until_interrupted(scratch, web, &web_server, progress)?;
    }

    progress.step("removing: endpoints leave and are deleted, then sandboxes, then the network")?;
    remove(containers, network, progress)
}

/// A container of the demo: its sandbox, its endpoint on the network, its address.
pub(super) struct Container {
    pub(super) name: &'static str,
    pub(super) sandbox: Sandbox,
    endpoint: Endpoint,
    pub(super) addr: Ipv4Addr,
}

impl Container {
    /// A sandbox with host name and domain, and an endpoint on `network` joined to it; `web`
    /// publishes its port.
    fn create(controller: &Controller, network: &Network, name: &'static str) -> Fallible<Self> {
        let options = SandboxOptions::default().hostname(name).domainname(DOMAIN);
        let sandbox = controller.new_sandbox(name, options)?;
        let mut options = EndpointOptions::default();
        if name == "web" {
            options = options.publish(PortBinding::tcp(HOST_PORT, WEB_PORT));
        }
        let mut endpoint = network.create_endpoint(name, options)?;
        endpoint.join(&sandbox)?;
        let info = endpoint.driver_info()?;
        let addr = match info.addresses.first().map(|a| a.addr()) {
            Some(IpAddr::V4(a)) => a,
            _ => return Err(format!("{name}'s endpoint has no IPv4 address").into()),
        };
        let ports: Vec<String> = info.port_map.iter().map(|p| p.to_string()).collect();
        let publishes = if ports.is_empty() {
            String::new()
        } else {
            format!(", publishes {}", ports.join(", "))
        };
        detail(&format!(
            "{name} ({name}.{DOMAIN}): {} {} {} via {}{publishes}; sandbox key {}",
            info.ifname,
            info.mac.as_deref().unwrap_or("(no MAC)"),
            crate::network::join(&info.addresses),
            crate::network::join(&info.gateways),
            info.sandbox_key.display()
        ));
        Ok(Container {
            name,
            sandbox,
            endpoint,
            addr,
        })
    }
}

/// Removes what the demo made in order, saying so as it goes.
fn remove(containers: Vec<Container>, network: Network, progress: &Progress) -> Fallible<()> {
    let mut sandboxes = Vec::new();
    for mut c in containers {
        progress.check()?;
        c.endpoint.leave(&c.sandbox)?;
        c.endpoint.delete()?;
        detail(&format!(
            "endpoint {} left sandbox {} and is deleted",
            c.name, c.name
        ));
        sandboxes.push(c.sandbox);
    }
    for sandbox in sandboxes {
        progress.check()?;
        let name = sandbox.container_id().to_string();
        sandbox.delete()?;
        detail(&format!(
            "sandbox {name} is deleted (its namespace and files)"
        ));
    }
    network.delete()?;
    let mut host = cnm_core::netlink::Handle::new()?;
    let links: Vec<String> = host.links()?.into_iter().map(|l| l.name).collect();
    detail(&format!(
        "network {NETWORK} is deleted; links left in the host namespace: {}",
        links.join(", ")
    ));
    Ok(())
}
