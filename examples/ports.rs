//! Two containers on a bridge network, one publishing a port: the client reaches the web
//! container directly, and the host reaches it through the published port on the gateway
//! address. Prints each endpoint's driver info and the answers.
//!
//! Runs in a throwaway host namespace with state in a temporary directory ([`Scratch`]); as
//! root: `cargo run -p cnm-examples --example ports`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use cnm_core::model::{
    Controller, EndpointOptions, NetworkOptions, PortBinding, SandboxOptions, Scratch,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("ports: run as root (it creates throwaway network namespaces)");
        return ExitCode::FAILURE;
    }
    let outcome = Scratch::new("ports")
        .map_err(Error::from)
        .and_then(|scratch| {
            println!(
                "host namespace (throwaway): {}",
                scratch.host().path().display()
            );
            let config = scratch.controller_config();
            scratch.host().run(move || run(Controller::new(config)?))?
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ports: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(controller: Controller) -> Result<(), Error> {
    let network = controller.new_network(
        "bridge",
        "web-net",
        NetworkOptions::default().ipv4("10.87.0.0/24".parse()?),
    )?;
    let mut web = network.create_endpoint(
        "web",
        EndpointOptions::default().publish(PortBinding::tcp(8080, 80)),
    )?;
    let mut client = network.create_endpoint("client", EndpointOptions::default())?;
    let web_box = controller.new_sandbox("web", SandboxOptions::default().hostname("web"))?;
    let client_box =
        controller.new_sandbox("client", SandboxOptions::default().hostname("client"))?;
    web.join(&web_box)?;
    client.join(&client_box)?;
    for ep in [&web, &client] {
        let info = ep.driver_info()?;
        let ports: Vec<String> = info.port_map.iter().map(ToString::to_string).collect();
        println!(
            "endpoint {}: {} {} {} ports [{}]",
            ep.name(),
            info.ifname,
            info.mac.as_deref().unwrap_or("-"),
            info.addresses[0],
            ports.join(", ")
        );
    }
    let web_ip = web.driver_info()?.addresses[0].addr();
    let gateway = web.driver_info()?.gateways[0];

    // The server's socket is made inside web's namespace and serves from this thread.
    let listener = web_box.run(|| TcpListener::bind("0.0.0.0:80"))??;
    std::thread::scope(|s| -> Result<(), Error> {
        let direct = s.spawn(|| client_box.run(move || ask(SocketAddr::new(web_ip, 80))));
        let peer = serve(&listener)?;
        println!(
            "client -> {web_ip}:80: {} (web saw {peer})",
            direct.join().expect("no panic")??
        );
        let published = s.spawn(move || ask(SocketAddr::new(gateway, 8080)));
        let peer = serve(&listener)?;
        println!(
            "host -> {gateway}:8080: {} (web saw {peer})",
            published.join().expect("no panic")?
        );
        Ok(())
    })?;

    web.delete()?;
    client.delete()?;
    web_box.delete()?;
    client_box.delete()?;
    network.delete()?;
    println!("removed: endpoints, sandboxes, network");
    Ok(())
}

/// Sends a request and returns the answer.
fn ask(to: SocketAddr) -> Result<String, Error> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"hello\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer.trim().to_owned())
}

/// Answers one connection; returns the peer address the server saw.
fn serve(listener: &TcpListener) -> Result<SocketAddr, Error> {
    // Never wait forever: a client that failed must not hang the example.
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (mut s, peer) = loop {
        match listener.accept() {
            Ok(conn) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Err("no connection within 5 s".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    };
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = [0u8; 6];
    s.read_exact(&mut line)?;
    s.write_all(b"hello from web\n")?;
    Ok(peer)
}
