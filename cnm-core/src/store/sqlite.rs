//! [`Store`] on one SQLite file; see the schema picture in the module above.

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;

use super::{
    EndpointKey, EndpointRecord, EndpointState, FirewallElement, NetworkRecord, Reservation,
    ReservedAddress, Store, StoreError, StoreResult,
};
use crate::cni::config::{NetworkName, RequestedIp};
use crate::cni::env::{ContainerId, IfName};
use crate::ipam::allocator::{allocate, assign_requests, candidates, AllocError};
use crate::ipam::RangeSetPlan;

mod memory;
mod rows;

pub use memory::allocate_through_rust;

use rows::{
    check_version, corrupt, delete_endpoint, endpoint_keys, ensure_network, load_endpoint,
    parse_addr, sql,
};

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY, driver TEXT NOT NULL, subnets TEXT NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    network TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('creating', 'created')), data TEXT NOT NULL,
    PRIMARY KEY (network, container_id, ifname));
CREATE TABLE IF NOT EXISTS addresses (
    network TEXT NOT NULL, addr TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
    set_index INTEGER NOT NULL, PRIMARY KEY (network, addr));
CREATE INDEX IF NOT EXISTS addresses_by_endpoint ON addresses (network, container_id, ifname);
CREATE TABLE IF NOT EXISTS cursors (
    network TEXT NOT NULL, set_index INTEGER NOT NULL, last_addr TEXT NOT NULL,
    PRIMARY KEY (network, set_index));
CREATE TABLE IF NOT EXISTS firewall_elements (
    network TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
    kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS firewall_by_endpoint
    ON firewall_elements (network, container_id, ifname);
";

/// Where the kernel says which boot this is; it changes on every reboot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The local store: one SQLite database shared by every plugin process on the host.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

/// Puts the database in WAL mode. WAL persists in the file, so this is a no-op after the first
/// open; concurrent first opens can get SQLITE_BUSY without the busy handler being called, so
/// the switch is retried for up to 10 s.
fn switch_to_wal(conn: &Connection) -> StoreResult<()> {
    let mode =
        |c: &Connection, sql_text: &str| c.query_row(sql_text, [], |r| r.get::<_, String>(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match mode(conn, "PRAGMA journal_mode") {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => {}
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {}
            Err(e) => return Err(sql("reading the journal mode")(e)),
        }
        match mode(conn, "PRAGMA journal_mode=WAL") {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Err(e) if !is_busy(&e) || std::time::Instant::now() >= deadline => {
                return Err(sql("switching to WAL")(e))
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Every network, by name, or the one called `only`.
fn load_networks(conn: &Connection, only: Option<&NetworkName>) -> StoreResult<Vec<NetworkRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, driver, subnets, config FROM networks
             WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
        )
        .map_err(sql("listing networks"))?;
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([only.map(NetworkName::as_str)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(Iterator::collect)
        .map_err(sql("listing networks"))?;
    rows.into_iter()
        .map(|(name, driver, subnets, config)| {
            let bad = || corrupt(format!("network {name}"));
            Ok(NetworkRecord {
                name: NetworkName::new(&name).map_err(|_| bad())?,
                driver,
                subnets: serde_json::from_str(&subnets).map_err(|_| bad())?,
                config: serde_json::from_str(&config).map_err(|_| bad())?,
            })
        })
        .collect()
}

/// How many of [`candidates`]' addresses [`pick`] looks up one by one before it reads them all.
const PROBES: usize = 16;

/// [`allocate`] for one range set, reading only what it needs: the requested address, or the
/// first [`PROBES`] candidates after the cursor, are looked up by key (one indexed lookup each,
/// whatever the number of endpoints). Only when all of those are taken (a pool nearly full
/// around the cursor) are all taken addresses read, into `all` for the sets that follow.
fn pick(
    conn: &Connection,
    net: &str,
    set: &RangeSetPlan,
    cursor: Option<IpAddr>,
    want: Option<IpAddr>,
    all: &mut Option<HashSet<IpAddr>>,
) -> StoreResult<Result<IpAddr, AllocError>> {
    let taken = |addr: IpAddr| -> StoreResult<bool> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM addresses WHERE network = ?1 AND addr = ?2)",
            )
            .map_err(sql("looking up an address"))?;
        stmt.query_row(params![net, addr.to_string()], |r| r.get(0))
            .map_err(sql("looking up an address"))
    };
    if all.is_none() {
        if let Some(addr) = want {
            let held = if taken(addr)? {
                HashSet::from([addr])
            } else {
                HashSet::new()
            };
            return Ok(allocate(set, &held, cursor, want));
        }
        for addr in candidates(set, cursor).take(PROBES) {
            if !taken(addr)? {
                return Ok(Ok(addr));
            }
        }
    }
    let all = match all {
        Some(all) => all,
        None => all.insert(taken_addresses(conn, net)?),
    };
    Ok(allocate(set, all, cursor, want))
}

/// Every address taken on the network.
fn taken_addresses(conn: &Connection, net: &str) -> StoreResult<HashSet<IpAddr>> {
    let mut stmt = conn
        .prepare_cached("SELECT addr FROM addresses WHERE network = ?1")
        .map_err(sql("reading taken addresses"))?;
    let rows: Vec<String> = stmt
        .query_map([net], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(sql("reading taken addresses"))?;
    rows.iter().map(|a| parse_addr(a)).collect()
}

/// A store directory must be absolute and without `..`: it comes from configuration.
pub(super) fn check_dir(dir: &Path) -> StoreResult<()> {
    if !dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir) {
        return Err(StoreError::Dir {
            path: dir.display().to_string(),
            what: "must be an absolute path without \"..\"".to_owned(),
            source: None,
        });
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/cnm.db`, reconciling with the current boot.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let boot_id = std::fs::read_to_string(BOOT_ID_PATH).ok();
        Self::open_with_boot_id(dir, boot_id.as_deref().map(str::trim))
    }

    /// [`Self::open`] with the boot id given (`None`: unknown, so no reconciliation).
    pub fn open_with_boot_id(dir: &Path, boot_id: Option<&str>) -> StoreResult<Self> {
        let dir_err = |what: &str, source| StoreError::Dir {
            path: dir.display().to_string(),
            what: what.to_owned(),
            source,
        };
        check_dir(dir)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| dir_err("creating it (mode 0700)", Some(e)))?;
        let path = dir.join("cnm.db");
        // The store's files must be the files themselves: a symbolic link planted in their
        // place would make cnm write wherever it points.
        for name in ["cnm.db", "cnm.db-wal", "cnm.db-shm"] {
            let file = dir.join(name);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| !m.is_file()) {
                return Err(dir_err(
                    &format!("{name} is not a regular file (a symbolic link?); remove it"),
                    None,
                ));
            }
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(sql("opening the database"))?;
        // busy_timeout first: even switching to WAL can meet another process's lock.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql("setting busy_timeout"))?;
        switch_to_wal(&conn)?;
        // Every plugin call is a process that opens and closes the store once. By default the
        // last connection to close checkpoints the WAL into the database and deletes the -wal
        // and -shm files (two fsyncs per call); they are kept instead, and the WAL is kept short
        // by `Drop` (see there). SQLite's own automatic checkpoint stays for long-lived users
        // (the library), at its default size.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(sql("keeping the WAL on close"))?;
        // synchronous = NORMAL: in WAL mode it survives a process crash at any instant; a power
        // loss may drop the last commits, but a power loss is a reboot, after which every
        // endpoint is dropped anyway (boot id), so nothing can leak from it.
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(sql("setting synchronous"))?;
        let mut store = SqliteStore { conn, path };
        store.init(boot_id)?;
        Ok(store)
    }

    /// Stores the driver's `data` for an endpoint, marking it created or leaving it creating.
    fn write_endpoint_data(
        &mut self,
        key: &EndpointKey,
        data: &Value,
        state: EndpointState,
    ) -> StoreResult<()> {
        let (doing, sql_text, point) = match state {
            EndpointState::Creating => (
                "noting the endpoint's data",
                "UPDATE endpoints SET data = ?4
                 WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
                "note",
            ),
            EndpointState::Created => (
                "committing the endpoint",
                "UPDATE endpoints SET state = 'created', data = ?4
                 WHERE network = ?1 AND container_id = ?2 AND ifname = ?3",
                "commit",
            ),
        };
        let tx = self.immediate(doing)?;
        let n = tx
            .execute(
                sql_text,
                params![
                    key.network.as_str(),
                    key.container_id.as_str(),
                    key.ifname.as_str(),
                    data.to_string()
                ],
            )
            .map_err(sql(doing))?;
        if n == 0 {
            return Err(StoreError::EndpointMissing(key.clone()));
        }
        tx.commit().map_err(sql(doing))?;
        crate::fault::side_effect(point);
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.path
            .parent()
            .expect("the database is a file in the store's directory")
    }

    /// Takes and releases the write lock: whether an ADD could write now (STATUS).
    pub fn check_writable(&mut self) -> StoreResult<()> {
        let tx = self.immediate("taking the write lock")?;
        tx.rollback().map_err(sql("releasing the write lock"))
    }

    fn immediate(&mut self, doing: &'static str) -> StoreResult<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(doing))
    }

    /// Creates the schema if missing, checks its version, and drops endpoints of past boots.
    fn init(&mut self, boot_id: Option<&str>) -> StoreResult<()> {
        let meta = |conn: &Connection, key: &str| -> StoreResult<Option<String>> {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql("reading the schema"))?;
            if !exists {
                return Ok(None);
            }
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(sql("reading meta"))
        };
        // Every open reads both in one statement; only a new store (no meta table yet) fails
        // it, and then takes the slow path below.
        let (version, stored_boot): (Option<String>, Option<String>) = self
            .conn
            .query_row(
                "SELECT (SELECT value FROM meta WHERE key = 'schema_version'), \
                        (SELECT value FROM meta WHERE key = 'boot_id')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or((None, None));
        if version.is_some() && (boot_id.is_none() || stored_boot.as_deref() == boot_id) {
            return check_version(version.as_deref());
        }
        let tx = self.immediate("initialising the store")?;
        tx.execute_batch(SCHEMA)
            .map_err(sql("creating the schema"))?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(sql("recording the schema version"))?;
        check_version(meta(&tx, "schema_version")?.as_deref())?;
        if let Some(boot) = boot_id {
            // Re-read under the lock: another process may have reconciled already.
            let stored = meta(&tx, "boot_id")?;
            if stored.as_deref() != Some(boot) {
                if stored.is_some() {
                    // Namespaces do not survive a reboot, so neither do endpoints.
                    tx.execute_batch(
                        "DELETE FROM endpoints; DELETE FROM addresses; DELETE FROM firewall_elements;",
                    )
                    .map_err(sql("dropping endpoints of the previous boot"))?;
                }
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('boot_id', ?1)",
                    [boot],
                )
                .map_err(sql("recording the boot id"))?;
            }
        }
        tx.commit().map_err(sql("initialising the store"))
    }
}

/// The WAL size above which the process closing the store copies the WAL back into the
/// database and empties it.
pub(super) const WAL_LIMIT: u64 = 512 * 1024;

impl Drop for SqliteStore {
    /// Keeps the WAL short across processes. A process that opens the store while no other has
    /// it open rebuilds the WAL index by reading every frame of the WAL, and every plugin call
    /// is such a process. SQLite's automatic checkpoint copies frames back but cannot restart
    /// the WAL from the start: only the process that checkpointed could, in a later write, and
    /// a new process cannot tell what an earlier one copied. So the WAL grew without bound:
    /// measured, 266 frames (1 MB) after 37 ADDs and DELs, 0.55 ms more per open. The process
    /// that leaves the WAL above `WAL_LIMIT` (about ten ADDs) copies it back and truncates it
    /// to nothing (two fsyncs, once every few calls); if another connection is busy it leaves
    /// that to a later one rather than wait. Limits of 64 KiB to 2 MiB were measured (100
    /// ADDs, from `main` to the result): 512 KiB was the fastest, 1.69-2.06 ms, 64 KiB the
    /// slowest, 2.26-2.42 ms (a checkpoint every call or two).
    fn drop(&mut self) {
        let wal = self.path.with_extension("db-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
            let _ = self.conn.busy_timeout(Duration::ZERO);
            let done = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                });
            if let Err(e) = done {
                tracing::debug!("left the WAL for a later call to empty: {e}");
            }
        }
    }
}

impl SqliteStore {
    /// The endpoints of `network` and/or `container` (all when both are `None`), read in one
    /// transaction so that the list and the rows are of one moment.
    fn load_endpoints(
        &self,
        network: Option<&NetworkName>,
        container: Option<&ContainerId>,
    ) -> StoreResult<Vec<EndpointRecord>> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sql("listing endpoints"))?;
        let mut out = Vec::new();
        for key in endpoint_keys(&tx, network, container)? {
            out.extend(load_endpoint(&tx, &key)?);
        }
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn create_network(&mut self, network: &NetworkRecord) -> StoreResult<()> {
        let tx = self.immediate("creating the network")?;
        for other in load_networks(&tx, None)? {
            if other.name == network.name {
                return Err(StoreError::NetworkExists(other.name.to_string()));
            }
            for subnet in &network.subnets {
                let overlap = other
                    .subnets
                    .iter()
                    .find(|o| crate::ipam::overlaps(o, subnet));
                if let Some(existing) = overlap {
                    return Err(StoreError::SubnetTaken {
                        subnet: *subnet,
                        network: other.name.to_string(),
                        existing: *existing,
                    });
                }
            }
        }
        ensure_network(&tx, network)?;
        tx.commit().map_err(sql("creating the network"))
    }

    fn reserve_endpoint(
        &mut self,
        network: &NetworkRecord,
        key: &EndpointKey,
        sets: &[RangeSetPlan],
        requested: &[RequestedIp],
    ) -> StoreResult<Reservation> {
        let alloc = |source| StoreError::Alloc {
            network: key.network.to_string(),
            source,
        };
        let wanted = assign_requests(sets, requested).map_err(alloc)?;
        let tx = self.immediate("starting the reservation")?;
        ensure_network(&tx, network)?;
        if let Some(found) = load_endpoint(&tx, key)? {
            tx.commit().map_err(sql("committing the reservation"))?;
            return Ok(Reservation {
                addresses: found.addresses,
                existing: true,
            });
        }
        let net = key.network.as_str();
        // Every taken address, read only if looking a few up by key did not find one free.
        let mut all_taken: Option<HashSet<IpAddr>> = None;
        let mut addresses = Vec::with_capacity(sets.len());
        for (i, (set, want)) in sets.iter().zip(wanted).enumerate() {
            let index = i as i64;
            let cursor: Option<String> = tx
                .query_row(
                    "SELECT last_addr FROM cursors WHERE network = ?1 AND set_index = ?2",
                    params![net, index],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("reading the cursor"))?;
            let cursor = cursor.as_deref().map(parse_addr).transpose()?;
            let addr = pick(&tx, net, set, cursor, want, &mut all_taken)?.map_err(alloc)?;
            if let Some(all) = &mut all_taken {
                all.insert(addr);
            }
            tx.execute(
                "INSERT INTO addresses (network, addr, container_id, ifname, set_index)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    net,
                    addr.to_string(),
                    key.container_id.as_str(),
                    key.ifname.as_str(),
                    index
                ],
            )
            .map_err(sql("recording the address"))?;
            tx.execute(
                "INSERT OR REPLACE INTO cursors (network, set_index, last_addr) VALUES (?1, ?2, ?3)",
                params![net, index, addr.to_string()],
            )
            .map_err(sql("moving the cursor"))?;
            addresses.push(ReservedAddress { set_index: i, addr });
        }
        tx.execute(
            "INSERT INTO endpoints (network, container_id, ifname, state, data)
             VALUES (?1, ?2, ?3, 'creating', 'null')",
            params![net, key.container_id.as_str(), key.ifname.as_str()],
        )
        .map_err(sql("recording the endpoint"))?;
        tx.commit().map_err(sql("committing the reservation"))?;
        let list: Vec<String> = addresses.iter().map(|a| a.addr.to_string()).collect();
        tracing::info!("reserved [{}] on network {}", list.join(", "), key.network);
        crate::fault::side_effect("reserve");
        Ok(Reservation {
            addresses,
            existing: false,
        })
    }

    fn note_endpoint(&mut self, key: &EndpointKey, data: &Value) -> StoreResult<()> {
        self.write_endpoint_data(key, data, EndpointState::Creating)
    }

    fn commit_endpoint(&mut self, key: &EndpointKey, data: &Value) -> StoreResult<()> {
        self.write_endpoint_data(key, data, EndpointState::Created)
    }

    fn add_firewall_elements(
        &mut self,
        key: &EndpointKey,
        elements: &[FirewallElement],
    ) -> StoreResult<()> {
        let tx = self.immediate("recording firewall elements")?;
        if load_endpoint(&tx, key)?.is_none() {
            return Err(StoreError::EndpointMissing(key.clone()));
        }
        // Prepared once for all the elements (a container may publish thousands of ports).
        let mut owner_of = tx
            .prepare_cached(
                "SELECT network, container_id, ifname FROM firewall_elements
                 WHERE kind = ?1 AND key = ?2",
            )
            .map_err(sql("looking up a firewall element's owner"))?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO firewall_elements (network, container_id, ifname, kind, key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql("recording a firewall element"))?;
        for e in elements {
            // One owner per element: another endpoint's is a conflict, this one's a repeat.
            let owner: Option<(String, String, String)> = owner_of
                .query_row(params![e.kind, e.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(sql("looking up a firewall element's owner"))?;
            if let Some((network, container_id, ifname)) = owner {
                let same = network == key.network.as_str()
                    && container_id == key.container_id.as_str()
                    && ifname == key.ifname.as_str();
                if same {
                    continue;
                }
                return Err(StoreError::ElementTaken {
                    element: e.clone(),
                    owner: format!("{network}/{container_id}/{ifname}"),
                });
            }
            insert
                .execute(params![
                    key.network.as_str(),
                    key.container_id.as_str(),
                    key.ifname.as_str(),
                    e.kind,
                    e.key
                ])
                .map_err(sql("recording a firewall element"))?;
        }
        drop((owner_of, insert));
        tx.commit().map_err(sql("recording firewall elements"))
    }

    fn release_endpoint(&mut self, key: &EndpointKey) -> StoreResult<Option<EndpointRecord>> {
        let tx = self.immediate("releasing the endpoint")?;
        let found = load_endpoint(&tx, key)?;
        if found.is_some() {
            delete_endpoint(&tx, key)?;
        }
        tx.commit().map_err(sql("releasing the endpoint"))?;
        if let Some(rec) = &found {
            let list: Vec<String> = rec.addresses.iter().map(|a| a.addr.to_string()).collect();
            tracing::info!("released [{}] on network {}", list.join(", "), key.network);
            crate::fault::side_effect("release");
        }
        Ok(found)
    }

    fn endpoint(&self, key: &EndpointKey) -> StoreResult<Option<EndpointRecord>> {
        load_endpoint(&self.conn, key)
    }

    fn endpoints(&self, network: Option<&NetworkName>) -> StoreResult<Vec<EndpointRecord>> {
        self.load_endpoints(network, None)
    }

    fn container_endpoints(&self, container: &ContainerId) -> StoreResult<Vec<EndpointRecord>> {
        self.load_endpoints(None, Some(container))
    }

    fn learn_subnets(&mut self, network: &NetworkName, subnets: &[IpNet]) -> StoreResult<()> {
        let tx = self.immediate("recording the network's subnets")?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT subnets FROM networks WHERE name = ?1",
                [network.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading the network's subnets"))?;
        let Some(stored) = stored else {
            return Err(corrupt(format!("network {network} is not in the store")));
        };
        let mut known: Vec<IpNet> = serde_json::from_str(&stored)
            .map_err(|_| corrupt(format!("networks.subnets of {network}")))?;
        let before = known.len();
        for s in subnets {
            if !known.contains(s) {
                known.push(*s);
            }
        }
        if known.len() != before {
            tx.execute(
                "UPDATE networks SET subnets = ?2 WHERE name = ?1",
                rusqlite::params![
                    network.as_str(),
                    serde_json::to_string(&known).expect("serialize")
                ],
            )
            .map_err(sql("recording the network's subnets"))?;
        }
        tx.commit()
            .map_err(sql("recording the network's subnets"))?;
        crate::fault::side_effect("learn subnets");
        Ok(())
    }

    fn networks(&self) -> StoreResult<Vec<NetworkRecord>> {
        load_networks(&self.conn, None)
    }

    fn network(&self, name: &NetworkName) -> StoreResult<Option<NetworkRecord>> {
        Ok(load_networks(&self.conn, Some(name))?.pop())
    }

    fn network_in_use(
        &self,
        name: &NetworkName,
        besides: Option<&EndpointKey>,
    ) -> StoreResult<bool> {
        // Container IDs and interface names are never empty: "" matches no endpoint.
        let (id, ifname) =
            besides.map_or(("", ""), |k| (k.container_id.as_str(), k.ifname.as_str()));
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM endpoints WHERE network = ?1
                 AND NOT (container_id = ?2 AND ifname = ?3))",
                [name.as_str(), id, ifname],
                |r| r.get(0),
            )
            .map_err(sql("looking for endpoints of the network"))
    }

    fn remove_network_if_unused(&mut self, name: &NetworkName) -> StoreResult<bool> {
        let tx = self.immediate("removing the network")?;
        let used: bool = tx
            .query_row(
                "SELECT count(*) > 0 FROM endpoints WHERE network = ?1",
                [name.as_str()],
                |r| r.get(0),
            )
            .map_err(sql("counting endpoints"))?;
        if used {
            return Ok(false);
        }
        let n = tx
            .execute("DELETE FROM networks WHERE name = ?1", [name.as_str()])
            .map_err(sql("removing the network"))?;
        tx.execute("DELETE FROM cursors WHERE network = ?1", [name.as_str()])
            .map_err(sql("removing the network's cursors"))?;
        tx.commit().map_err(sql("removing the network"))?;
        Ok(n > 0)
    }

    fn gc(
        &mut self,
        network: &NetworkName,
        keep: &[(ContainerId, IfName)],
    ) -> StoreResult<Vec<EndpointRecord>> {
        let tx = self.immediate("collecting garbage")?;
        let mut removed = Vec::new();
        for key in endpoint_keys(&tx, Some(network), None)? {
            let kept = keep
                .iter()
                .any(|(c, i)| *c == key.container_id && *i == key.ifname);
            if !kept {
                removed.extend(load_endpoint(&tx, &key)?);
                delete_endpoint(&tx, &key)?;
            }
        }
        tx.commit().map_err(sql("collecting garbage"))?;
        Ok(removed)
    }
}
