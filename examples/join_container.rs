//! libnetwork's early API shape (issue #9): configure the driver on the controller, create
//! "network1" and "Endpoint1" with an exposed and a published port, then join the endpoint to
//! "container1" by its ID, which creates the container's sandbox and returns its key. The
//! driver info then carries the port map next to the MAC address.
//!
//! Runs in a throwaway host namespace with state in a temporary directory ([`Scratch`]); as
//! root: `cargo run -p cnm-examples --example join_container`.

use std::process::ExitCode;

use cnm_core::model::{EndpointOptions, NetworkOptions, PortBinding, SandboxOptions, Scratch};
use serde_json::json;

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("join_container: run as root (it creates throwaway network namespaces)");
        return ExitCode::FAILURE;
    }
    let outcome = Scratch::new("join").and_then(|scratch| {
        println!(
            "host namespace (throwaway): {}",
            scratch.host().path().display()
        );
        scratch.run(|controller| {
            // Configure the driver: options every bridge network starts from.
            let mut options = serde_json::Map::new();
            options.insert("mtu".into(), json!(1450));
            controller.configure_network_driver("bridge", options)?;

            let network = controller.new_network(
                "bridge",
                "network1",
                NetworkOptions::default().ipv4("10.88.0.0/24".parse().expect("a subnet")),
            )?;
            let mut ep = network.create_endpoint(
                "Endpoint1",
                EndpointOptions::default().publish(PortBinding::tcp(8080, 80)),
            )?;

            // Join by container ID: the sandbox is created (or reused) and its key returned.
            let key = ep.join_container(
                "container1",
                SandboxOptions::default()
                    .hostname("test")
                    .domainname("docker.io"),
            )?;
            let info = ep.driver_info()?;
            println!(
                "Joined endpoint {} ({}) to container container1 ({})",
                ep.name(),
                info.mac.as_deref().unwrap_or("no MAC"),
                key.display()
            );
            for (proto, port) in &info.exposed_ports {
                println!("exposed: {port}/{}", proto.as_str());
            }
            for binding in &info.port_map {
                println!("port map: {binding}");
            }
            for address in &info.addresses {
                println!("address: {address}");
            }

            ep.delete()?;
            if let Some(sandbox) = controller.sandbox("container1")? {
                sandbox.delete()?;
            }
            network.delete()
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("join_container: {e}");
            ExitCode::FAILURE
        }
    }
}
