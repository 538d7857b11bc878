//! `cnm network ls` and `cnm network inspect NAME`.

use clap::Subcommand;
use cnm_core::cni::config::NetworkName;
use cnm_core::inventory::NetworkInfo;

use crate::output::{emit, emit_json};
use crate::table::Table;
use crate::{Global, Outcome};

/// What to do with networks.
#[derive(Subcommand)]
pub enum Command {
    /// Lists every network: name, driver, subnets, number of endpoints.
    #[command(visible_alias = "list")]
    Ls,
    /// Shows one network, with the configuration its plugin recorded.
    Inspect {
        /// The network's name (the `name` of its CNI configuration).
        name: String,
    },
}

/// Runs a `cnm network` subcommand.
pub fn run(cmd: &Command, global: &Global) -> Outcome {
    let inventory = global.inventory()?;
    match cmd {
        Command::Ls => {
            let networks = inventory.networks()?;
            if global.json {
                return emit_json(&networks);
            }
            let mut table = Table::new(&["NAME", "DRIVER", "SUBNETS", "ENDPOINTS"]);
            for n in &networks {
                table.row(vec![
                    n.name.to_string(),
                    n.driver.clone(),
                    join(&n.subnets),
                    n.endpoints.to_string(),
                ]);
            }
            emit(&table.render())
        }
        Command::Inspect { name } => {
            // A name that is not valid cannot be a network's either.
            let found = match NetworkName::new(name) {
                Ok(valid) => inventory.network(&valid)?,
                Err(_) => None,
            };
            let Some(network) = found else {
                let dir = global.data_dir.display();
                return Err(format!("no network named {name:?} in {dir}").into());
            };
            if global.json {
                return emit_json(&network);
            }
            emit(&describe(&network))
        }
    }
}

/// `NAME: value` lines, aligned.
fn describe(n: &NetworkInfo) -> String {
    let mut table = Table::default();
    let mut field = |key: &str, value: String| table.row(vec![format!("{key}:"), value]);
    field("Name", n.name.to_string());
    field("Driver", n.driver.clone());
    field("Subnets", join(&n.subnets));
    field("Endpoints", n.endpoints.to_string());
    field("Config", n.config.to_string());
    table.render()
}

/// Items separated by commas.
pub fn join<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}
