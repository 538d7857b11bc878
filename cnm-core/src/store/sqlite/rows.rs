//! Row-level helpers of [`super::SqliteStore`]: decoding rows, and the statements that several
//! operations share. Every value is bound as a parameter.

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::SCHEMA_VERSION;
use crate::cni::config::NetworkName;
use crate::cni::env::{ContainerId, IfName};
use crate::store::{
    EndpointKey, EndpointRecord, EndpointState, FirewallElement, NetworkRecord, ReservedAddress,
    StoreError, StoreResult,
};

pub(super) fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { doing, source }
}

pub(super) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

pub(super) fn check_version(found: Option<&str>) -> StoreResult<()> {
    let found: i64 = found
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("meta.schema_version is not a number"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn parse_key(network: String, container_id: String, ifname: String) -> StoreResult<EndpointKey> {
    Ok(EndpointKey {
        network: NetworkName::new(&network).map_err(|e| corrupt(e.to_string()))?,
        container_id: ContainerId::new(&container_id).map_err(|e| corrupt(e.to_string()))?,
        ifname: IfName::new(&ifname).map_err(|e| corrupt(e.to_string()))?,
    })
}

pub(super) fn parse_addr(s: &str) -> StoreResult<IpAddr> {
    s.parse()
        .map_err(|_| corrupt(format!("{s:?} is not an address")))
}

fn join<T: ToString>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(T::to_string).collect();
    parts.join(", ")
}

/// Inserts the network or checks that it matches; updates its stored config.
pub(super) fn ensure_network(conn: &Connection, net: &NetworkRecord) -> StoreResult<()> {
    let subnets = serde_json::to_string(&net.subnets).expect("subnets serialize");
    let config = net.config.to_string();
    let existing: Option<(String, String)> = conn
        .query_row(
            "SELECT driver, subnets FROM networks WHERE name = ?1",
            [net.name.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("reading the network"))?;
    let conflict = |what, existing: String, wanted: String| StoreError::NetworkConflict {
        name: net.name.to_string(),
        what,
        existing,
        wanted,
    };
    match existing {
        None => {
            conn.execute(
                "INSERT INTO networks (name, driver, subnets, config) VALUES (?1, ?2, ?3, ?4)",
                params![net.name.as_str(), net.driver, subnets, config],
            )
            .map_err(sql("creating the network"))?;
        }
        Some((driver, _)) if driver != net.driver => {
            return Err(conflict("driver", driver, net.driver.clone()));
        }
        // An empty list is no opinion: a network whose addresses come from a delegated IPAM
        // learns its subnets after the fact (`learn_subnets`).
        Some((_, stored)) if stored != subnets && !net.subnets.is_empty() => {
            let had: Vec<ipnet::IpNet> = serde_json::from_str(&stored)
                .map_err(|_| corrupt(format!("networks.subnets of {}", net.name)))?;
            let what = if had.len() == 1 { "subnet" } else { "subnets" };
            return Err(conflict(what, join(&had), join(&net.subnets)));
        }
        // Unchanged (every ADD but the first), the row is not written: no page to log.
        Some(_) => {
            conn.execute(
                "UPDATE networks SET config = ?2 WHERE name = ?1 AND config IS NOT ?2",
                params![net.name.as_str(), config],
            )
            .map_err(sql("updating the network"))?;
        }
    }
    Ok(())
}

pub(super) fn load_endpoint(
    conn: &Connection,
    key: &EndpointKey,
) -> StoreResult<Option<EndpointRecord>> {
    let k = params![
        key.network.as_str(),
        key.container_id.as_str(),
        key.ifname.as_str()
    ];
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT state, data FROM endpoints
             WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
            k,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("reading the endpoint"))?;
    let Some((state, data)) = row else {
        return Ok(None);
    };
    let state = match state.as_str() {
        "creating" => EndpointState::Creating,
        "created" => EndpointState::Created,
        other => return Err(corrupt(format!("endpoint {key} has state {other:?}"))),
    };
    let data: Value = serde_json::from_str(&data)
        .map_err(|_| corrupt(format!("endpoint {key} data is not JSON")))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT set_index, addr FROM addresses
             WHERE network = ?1 AND container_id = ?2 AND ifname = ?3 ORDER BY set_index",
        )
        .map_err(sql("reading addresses"))?;
    let rows: Vec<(i64, String)> = stmt
        .query_map(k, |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(Iterator::collect)
        .map_err(sql("reading addresses"))?;
    let addresses = rows
        .into_iter()
        .map(|(i, a)| {
            Ok(ReservedAddress {
                set_index: usize::try_from(i).map_err(|_| corrupt("negative set_index"))?,
                addr: parse_addr(&a)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, key FROM firewall_elements
             WHERE network = ?1 AND container_id = ?2 AND ifname = ?3 ORDER BY kind, key",
        )
        .map_err(sql("reading firewall elements"))?;
    let firewall = stmt
        .query_map(k, |r| {
            Ok(FirewallElement {
                kind: r.get(0)?,
                key: r.get(1)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading firewall elements"))?;
    Ok(Some(EndpointRecord {
        key: key.clone(),
        state,
        addresses,
        firewall,
        data,
    }))
}

pub(super) fn endpoint_keys(
    conn: &Connection,
    network: Option<&NetworkName>,
    container: Option<&ContainerId>,
) -> StoreResult<Vec<EndpointKey>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT network, container_id, ifname FROM endpoints
             WHERE (?1 IS NULL OR network = ?1) AND (?2 IS NULL OR container_id = ?2)
             ORDER BY network, container_id, ifname",
        )
        .map_err(sql("listing endpoints"))?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map(
            [
                network.map(NetworkName::as_str),
                container.map(ContainerId::as_str),
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .and_then(Iterator::collect)
        .map_err(sql("listing endpoints"))?;
    rows.into_iter()
        .map(|(n, c, i)| parse_key(n, c, i))
        .collect()
}

pub(super) fn delete_endpoint(conn: &Connection, key: &EndpointKey) -> StoreResult<()> {
    let k = params![
        key.network.as_str(),
        key.container_id.as_str(),
        key.ifname.as_str()
    ];
    for stmt in [
        "DELETE FROM endpoints WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
        "DELETE FROM addresses WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
        "DELETE FROM firewall_elements WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
    ] {
        conn.execute(stmt, k)
            .map_err(sql("deleting the endpoint"))?;
    }
    Ok(())
}
