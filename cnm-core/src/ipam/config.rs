//! The `ipam` section, read the way the reference `host-local` reads it, and validated into an
//! [`IpamPlan`] before anything is reserved.
//!
//! Accepted shapes: the legacy flat `subnet`/`rangeStart`/`rangeEnd`/`gateway`, and
//! `ranges: [[{subnet, rangeStart, rangeEnd, gateway}, ...], ...]`, a list of range *sets*, each
//! of which yields one address (so dual-stack is two sets). As in host-local, a flat range given
//! next to `ranges` becomes the first set. Defaults as in host-local: the gateway is the first
//! host, `rangeStart` the first host (the gateway is skipped when allocating), `rangeEnd` the last
//! usable host (IPv4 leaves out the broadcast address).

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{from_u128, to_u128};
use crate::cni::result::{Dns, Route};

/// Where the store lives unless `ipam.dataDir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/cnm";

/// What is wrong with the `ipam` section; every variant is CNI code 7.
#[derive(Debug, thiserror::Error)]
pub enum IpamConfigError {
    /// A field has the wrong type or value.
    #[error("network configuration field {path}: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// Neither `subnet` nor `ranges` is given.
    #[error("ipam has no address range: set \"subnet\" or \"ranges\"")]
    NoRanges,
    /// A range set is an empty list.
    #[error("{field} is empty: each range set needs at least one range")]
    EmptySet { field: String },
    /// A subnet has host bits set.
    #[error("{field} {given} is not a network address (host bits are set); write {network}")]
    HostBits {
        field: String,
        given: IpNet,
        network: IpNet,
    },
    /// A subnet is too small to hold a host (/31, /32, /127, /128).
    #[error("{field} {subnet} has no usable host address; use a prefix of at most /{max}")]
    TooSmall {
        field: String,
        subnet: IpNet,
        max: u8,
    },
    /// `rangeStart`, `rangeEnd` or `gateway` is not a usable host of the subnet.
    #[error("{field} {addr} is not a usable host address of {subnet} ({first}-{last})")]
    OutsideSubnet {
        field: String,
        addr: IpAddr,
        subnet: IpNet,
        first: IpAddr,
        last: IpAddr,
    },
    /// `rangeStart` comes after `rangeEnd`.
    #[error("{field}: rangeStart {start} is after rangeEnd {end}")]
    StartAfterEnd {
        field: String,
        start: IpAddr,
        end: IpAddr,
    },
    /// Two ranges share addresses.
    #[error("{a} ({a_range}) overlaps {b} ({b_range}); ranges must not share addresses")]
    Overlap {
        a: String,
        a_range: String,
        b: String,
        b_range: String,
    },
    /// A range set mixes IPv4 and IPv6.
    #[error(
        "{field} mixes IPv4 and IPv6 ({first} and {other}); put each family in its own range set"
    )]
    MixedFamilies {
        field: String,
        first: IpNet,
        other: IpNet,
    },
    /// A route's gateway is not of its destination's family.
    #[error("{field}: gateway {gw} is not of the same family as {dst}")]
    RouteFamily {
        field: String,
        gw: IpAddr,
        dst: IpNet,
    },
    /// `dataDir` is not an absolute path without `..`.
    #[error("ipam.dataDir {path:?} {why}; give an absolute path such as {DEFAULT_DATA_DIR}")]
    DataDir { path: String, why: &'static str },
}

/// One validated range: addresses `start..=end` of `subnet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// The network (host bits clear).
    pub subnet: IpNet,
    /// First address handed out.
    pub start: IpAddr,
    /// Last address handed out.
    pub end: IpAddr,
    /// The gateway reported in results; never handed out.
    pub gateway: IpAddr,
}

impl RangePlan {
    /// Whether `addr` is one of the addresses this range hands out (gateway included).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.start.is_ipv4()
            && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(addr))
    }
}

impl std::fmt::Display for RangePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (range {}-{})", self.subnet, self.start, self.end)
    }
}

/// A validated range set: one address is taken from one of its ranges; all of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSetPlan {
    /// The ranges, tried in order.
    pub ranges: Vec<RangePlan>,
}

impl RangeSetPlan {
    /// The range that hands out `addr`, if any.
    pub fn range_for(&self, addr: IpAddr) -> Option<&RangePlan> {
        self.ranges.iter().find(|r| r.contains(addr))
    }

    /// Whether `addr` is the gateway of one of the set's ranges.
    pub fn is_gateway(&self, addr: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.gateway == addr)
    }
}

impl std::fmt::Display for RangeSetPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The whole validated `ipam` section.
#[derive(Debug, Clone, PartialEq)]
pub struct IpamPlan {
    /// Range sets; ADD reserves one address in each.
    pub sets: Vec<RangeSetPlan>,
    /// `routes`, returned in the result.
    pub routes: Vec<Route>,
    /// `dns`, returned in the result.
    pub dns: Dns,
    /// Directory of the store.
    pub data_dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRange {
    subnet: IpNet,
    #[serde(default)]
    range_start: Option<IpAddr>,
    #[serde(default)]
    range_end: Option<IpAddr>,
    #[serde(default)]
    gateway: Option<IpAddr>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(default)]
    subnet: Option<IpNet>,
    #[serde(default)]
    range_start: Option<IpAddr>,
    #[serde(default)]
    range_end: Option<IpAddr>,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    ranges: Vec<Vec<RawRange>>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    data_dir: Option<String>,
}

impl IpamPlan {
    /// Validates the `ipam` object of a network configuration.
    pub fn parse(ipam: &Map<String, Value>) -> Result<Self, IpamConfigError> {
        let raw: RawIpam =
            serde_path_to_error::deserialize(Value::Object(ipam.clone())).map_err(|e| {
                IpamConfigError::Field {
                    path: format!("ipam.{}", e.path()),
                    source: e.into_inner(),
                }
            })?;
        let mut raw_sets: Vec<(String, Vec<RawRange>)> = Vec::new();
        if let Some(subnet) = raw.subnet {
            let flat = RawRange {
                subnet,
                range_start: raw.range_start,
                range_end: raw.range_end,
                gateway: raw.gateway,
            };
            raw_sets.push(("ipam".into(), vec![flat]));
        }
        for (i, set) in raw.ranges.into_iter().enumerate() {
            raw_sets.push((format!("ipam.ranges[{i}]"), set));
        }
        if raw_sets.is_empty() {
            return Err(IpamConfigError::NoRanges);
        }
        let mut sets = Vec::new();
        let mut all: Vec<(String, RangePlan)> = Vec::new();
        for (field, set) in raw_sets {
            if set.is_empty() {
                return Err(IpamConfigError::EmptySet { field });
            }
            let flat = field == "ipam";
            let mut ranges = Vec::new();
            for (j, r) in set.into_iter().enumerate() {
                let at = if flat {
                    field.clone()
                } else {
                    format!("{field}[{j}]")
                };
                let plan = range(&at, &r)?;
                if let Some(first) = ranges.first().map(|f: &RangePlan| f.subnet) {
                    if first.addr().is_ipv4() != plan.subnet.addr().is_ipv4() {
                        return Err(IpamConfigError::MixedFamilies {
                            field,
                            first,
                            other: plan.subnet,
                        });
                    }
                }
                all.push((at, plan.clone()));
                ranges.push(plan);
            }
            sets.push(RangeSetPlan { ranges });
        }
        check_overlaps(&all)?;
        for (i, r) in raw.routes.iter().enumerate() {
            if let Some(gw) = r.gw.filter(|gw| gw.is_ipv4() != r.dst.addr().is_ipv4()) {
                let field = format!("ipam.routes[{i}]");
                return Err(IpamConfigError::RouteFamily {
                    field,
                    gw,
                    dst: r.dst,
                });
            }
        }
        Ok(IpamPlan {
            sets,
            routes: raw.routes,
            dns: raw.dns.unwrap_or_default(),
            data_dir: data_dir(raw.data_dir.as_deref())?,
        })
    }

    /// The subnets of every range, in order: the network's address identity.
    pub fn subnets(&self) -> Vec<IpNet> {
        self.sets
            .iter()
            .flat_map(|s| s.ranges.iter().map(|r| r.subnet))
            .collect()
    }
}

/// First and last usable host of `subnet` (IPv4 leaves out the broadcast address).
fn usable(subnet: &IpNet) -> (IpAddr, IpAddr) {
    let net = subnet.network();
    let last = to_u128(subnet.broadcast()) - u128::from(net.is_ipv4());
    (from_u128(net, to_u128(net) + 1), from_u128(net, last))
}

fn range(field: &str, r: &RawRange) -> Result<RangePlan, IpamConfigError> {
    let subnet = r.subnet.trunc();
    let sub_field = format!("{field}.subnet");
    if subnet != r.subnet {
        return Err(IpamConfigError::HostBits {
            field: sub_field,
            given: r.subnet,
            network: subnet,
        });
    }
    let max = subnet.max_prefix_len() - 2;
    if subnet.prefix_len() > max {
        return Err(IpamConfigError::TooSmall {
            field: sub_field,
            subnet,
            max,
        });
    }
    let (first, last) = usable(&subnet);
    let inside = |name: &str, addr: Option<IpAddr>, default: IpAddr| {
        let addr = addr.unwrap_or(default);
        let ok = addr.is_ipv4() == first.is_ipv4()
            && (to_u128(first)..=to_u128(last)).contains(&to_u128(addr));
        if ok {
            Ok(addr)
        } else {
            Err(IpamConfigError::OutsideSubnet {
                field: format!("{field}.{name}"),
                addr,
                subnet,
                first,
                last,
            })
        }
    };
    let start = inside("rangeStart", r.range_start, first)?;
    let end = inside("rangeEnd", r.range_end, last)?;
    let gateway = inside("gateway", r.gateway, first)?;
    if to_u128(start) > to_u128(end) {
        return Err(IpamConfigError::StartAfterEnd {
            field: field.to_owned(),
            start,
            end,
        });
    }
    Ok(RangePlan {
        subnet,
        start,
        end,
        gateway,
    })
}

fn check_overlaps(all: &[(String, RangePlan)]) -> Result<(), IpamConfigError> {
    for (i, (a, ra)) in all.iter().enumerate() {
        for (b, rb) in &all[i + 1..] {
            let same_family = ra.start.is_ipv4() == rb.start.is_ipv4();
            if same_family
                && to_u128(ra.start) <= to_u128(rb.end)
                && to_u128(rb.start) <= to_u128(ra.end)
            {
                return Err(IpamConfigError::Overlap {
                    a: a.clone(),
                    a_range: format!("{}-{}", ra.start, ra.end),
                    b: b.clone(),
                    b_range: format!("{}-{}", rb.start, rb.end),
                });
            }
        }
    }
    Ok(())
}

fn data_dir(given: Option<&str>) -> Result<PathBuf, IpamConfigError> {
    let Some(s) = given else {
        return Ok(PathBuf::from(DEFAULT_DATA_DIR));
    };
    let bad = |why| IpamConfigError::DataDir {
        path: s.to_owned(),
        why,
    };
    let path = Path::new(s);
    if !path.is_absolute() {
        return Err(bad("is not an absolute path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(bad("contains a \"..\" component"));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests;
