//! `cnm`: shows what cnm has made on this node (its networks and endpoints), read from cnm's
//! store; removes what belongs to no live container (`cnm gc`); and shows the model at work in
//! throwaway namespaces (`cnm demo`). This file parses the command line and calls one function
//! per subcommand; each subcommand lives in its own module, so adding one is a module and a
//! `match` arm.

mod demo;
mod endpoint;
mod gc;
mod network;
mod output;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cnm_core::inventory::Inventory;
use cnm_core::ipam::config::DEFAULT_DATA_DIR;

/// What a subcommand returns; an error becomes one line on stderr and exit status 1.
type Outcome = Result<(), Box<dyn std::error::Error>>;

/// Shows what cnm (Docker's Container Network Model as CNI plugins) has made on this node,
/// removes what belongs to no live container, and demonstrates the model.
///
/// Exit status: 0 on success, 1 when something failed (one line on stderr), 2 for a usage
/// error, 130 when the demo was interrupted (after it removed everything).
#[derive(Parser)]
#[command(name = "cnm", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Args)]
struct Global {
    /// cnm's store directory (the plugins' `dataDir`); a missing one holds nothing.
    #[arg(long, global = true, value_name = "DIR", env = "CNM_DATA_DIR",
          default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Print JSON, for scripts, instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Global {
    /// The inventory of the store in `--data-dir`.
    fn inventory(&self) -> Result<Inventory, Box<dyn std::error::Error>> {
        let dir = std::path::absolute(&self.data_dir)?;
        Inventory::open(&dir).map_err(|e| {
            let why = output::one_line(&e);
            format!("reading cnm's store in {}: {why}", dir.display()).into()
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Networks: their drivers, subnets and number of endpoints.
    #[command(subcommand)]
    Network(network::Command),
    /// Endpoints: containers' interfaces on cnm's networks.
    #[command(subcommand)]
    Endpoint(endpoint::Command),
    /// Deletes the endpoints whose container's network namespace is gone (a crashed runtime,
    /// a container removed without DEL): their links, addresses and published ports. Run it
    /// in the network namespace the plugins run in (the host's).
    Gc,
    /// Shows the model at work inside throwaway network namespaces: a bridge network, three
    /// containers, pings, HTTP directly and through a published port, the endpoint table;
    /// then removes everything, also on Ctrl-C. Needs root. Its state is throwaway too (it
    /// reads no --data-dir), and it prints text only.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return output::usage_error(e),
    };
    let outcome = match &cli.command {
        Command::Network(cmd) => network::run(cmd, &cli.global),
        Command::Endpoint(cmd) => endpoint::run(cmd, &cli.global),
        Command::Gc => gc::run(&cli.global),
        Command::Demo(_) if cli.global.json => {
            Err("the demo prints text for people; --json is for gc, network and endpoint".into())
        }
        Command::Demo(args) => demo::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The demo said so on stdout, and removed everything.
        Err(e) if e.is::<demo::Interrupted>() => ExitCode::from(130),
        Err(e) => {
            eprintln!("cnm: {}", output::one_line(&*e));
            ExitCode::FAILURE
        }
    }
}
