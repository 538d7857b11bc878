//! libnetwork's README example, in Rust: select the bridge driver, create a controller, a
//! network, an endpoint and a sandbox with a host and domain name, join, and print the
//! endpoint's MAC address and the sandbox key.
//!
//! The "host" is a throwaway network namespace and the controller's state a temporary
//! directory ([`Scratch`]), both removed when the example ends, also on an error. As root:
//! `cargo run -p cnm-examples --example readme`.

use std::process::ExitCode;

use cnm_core::model::{Controller, EndpointOptions, NetworkOptions, SandboxOptions, Scratch};

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("readme: run as root (it creates throwaway network namespaces)");
        return ExitCode::FAILURE;
    }
    let scratch = match Scratch::new("readme") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("readme: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "host namespace (throwaway): {}",
        scratch.host().path().display()
    );
    let config = scratch.controller_config();
    let outcome = scratch.host().run(move || -> cnm_core::Result<()> {
        // Select and configure the network driver.
        let network_type = "bridge";

        // Create a new controller instance.
        let controller = Controller::new(config)?;
        controller.configure_network_driver(network_type, Default::default())?;

        // Create a network for containers to join.
        let network =
            controller.new_network(network_type, "network1", NetworkOptions::default())?;

        // For each new container: allocate IP and interfaces.
        let mut ep = network.create_endpoint("Endpoint1", EndpointOptions::default())?;

        // Create the sandbox for the container.
        let sbx = controller.new_sandbox(
            "container1",
            SandboxOptions::default()
                .hostname("test")
                .domainname("docker.io"),
        )?;

        // A sandbox can join the endpoint via the join api.
        ep.join(&sbx)?;

        // The endpoint's operational data, from its driver.
        let info = ep.driver_info()?;
        let mac = info.mac.as_deref().unwrap_or("no MAC");
        println!(
            "Joined endpoint {} ({mac}) to sandbox {} ({})",
            ep.name(),
            sbx.container_id(),
            sbx.key().display()
        );

        // Tidy up in reverse (the Scratch would remove what is left anyway).
        ep.delete()?;
        sbx.delete()?;
        network.delete()?;
        Ok(())
    });
    match outcome.map_err(cnm_core::Error::Netns).and_then(|r| r) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("readme: {e}");
            ExitCode::FAILURE
        }
    }
}
