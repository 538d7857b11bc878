//! `cnm gc`: deletes the endpoints whose container's namespace is gone (a runtime that crashed,
//! a container removed without DEL), with their links, addresses and published ports. It works
//! in this process's network namespace, the "host" of the plugins that made the endpoints.

use std::path::Path;

use cnm_core::model::{Controller, ControllerConfig, GcReport};
use cnm_core::store::EndpointKey;
use serde::Serialize;

use crate::endpoint::short_id;
use crate::output::{emit, emit_json, one_line};
use crate::table::Table;
use crate::{Global, Outcome};

/// What `--json` prints.
#[derive(Serialize)]
struct Report {
    /// Endpoints deleted because their container is gone.
    removed: Vec<Endpoint>,
    /// How many endpoints belong to a live container.
    kept: usize,
    /// Endpoints left alone, each with the reason.
    skipped: Vec<Endpoint>,
}

/// One endpoint of the report.
#[derive(Serialize)]
struct Endpoint {
    network: String,
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Endpoint {
    fn new(key: &EndpointKey, reason: Option<String>) -> Self {
        Endpoint {
            network: key.network.to_string(),
            container_id: key.container_id.to_string(),
            ifname: key.ifname.to_string(),
            reason,
        }
    }
}

impl From<GcReport> for Report {
    fn from(r: GcReport) -> Self {
        Report {
            removed: r.removed.iter().map(|k| Endpoint::new(k, None)).collect(),
            kept: r.kept,
            skipped: r
                .skipped
                .iter()
                .map(|(k, why)| Endpoint::new(k, Some(why.clone())))
                .collect(),
        }
    }
}

/// Runs `cnm gc`.
pub fn run(global: &Global) -> Outcome {
    let dir = std::path::absolute(&global.data_dir)?;
    let report = Report::from(collect(&dir).map_err(|e| {
        let why = one_line(&*e);
        format!("gc of cnm's store in {}: {why}", dir.display())
    })?);
    if global.json {
        return emit_json(&report);
    }
    emit(&render(&report))
}

/// Collects the garbage of the store in `dir`; a missing store holds none and is not created.
fn collect(dir: &Path) -> Result<GcReport, Box<dyn std::error::Error>> {
    // As `Inventory::open`: absent is empty, but a store that cannot be looked at is an error.
    match std::fs::symlink_metadata(dir.join("cnm.db")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GcReport::default()),
        Err(e) => return Err(format!("reading {}: {e}", dir.join("cnm.db").display()).into()),
        Ok(_) => {}
    }
    let controller = Controller::new(ControllerConfig {
        data_dir: dir.to_owned(),
        ..ControllerConfig::default()
    })?;
    Ok(controller.gc()?)
}

/// A table of what was removed and skipped, then one line of counts.
fn render(report: &Report) -> String {
    let mut table = Table::new(&["RESULT", "NETWORK", "CONTAINER ID", "INTERFACE", "REASON"]);
    let rows = report.removed.iter().map(|e| ("removed", e));
    for (result, e) in rows.chain(report.skipped.iter().map(|e| ("skipped", e))) {
        let reason = e.reason.as_deref().unwrap_or("its namespace is gone");
        table.row(vec![
            result.to_owned(),
            e.network.clone(),
            short_id(&e.container_id),
            e.ifname.clone(),
            reason.to_owned(),
        ]);
    }
    let mut out = String::new();
    if !report.removed.is_empty() || !report.skipped.is_empty() {
        out.push_str(&table.render());
    }
    out.push_str(&format!(
        "removed {}, kept {} (container alive), skipped {}\n",
        report.removed.len(),
        report.kept,
        report.skipped.len()
    ));
    out
}
