//! The result cache, in libcni's on-disk format so that caches can be compared with `cnitool`'s:
//!
//! ```text
//! CACHE_DIR/results/NETWORK-CONTAINERID-IFNAME     one file per attachment, written on ADD,
//!   {"kind": "cniCacheV1",                          removed after a successful DEL
//!    "containerId", "ifName", "networkName", "netns",
//!    "config": base64 of the conflist bytes,
//!    "cniArgs": [[K, V], ...], "capabilityArgs": {...},
//!    "result": the last plugin's ADD result}
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{NetworkConfigList, RuntimeConf};

const KIND: &str = "cniCacheV1";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    kind: String,
    container_id: String,
    #[serde(default)]
    config: String,
    if_name: String,
    network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    netns: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cni_args: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
}

/// One attachment found in the cache: what GC needs to DEL it again.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAttachment {
    /// The network (list) name.
    pub network: String,
    /// The runtime parameters of the ADD.
    pub rt: RuntimeConf,
    /// The ADD's final result.
    pub result: Option<Value>,
}

/// The cache file of one attachment.
pub fn cache_path(cache_dir: &Path, network: &str, rt: &RuntimeConf) -> PathBuf {
    cache_dir
        .join("results")
        .join(format!("{network}-{}-{}", rt.container_id, rt.ifname))
}

/// Records a successful ADD; the file is replaced atomically.
pub fn write(
    cache_dir: &Path,
    list: &NetworkConfigList,
    rt: &RuntimeConf,
    result: &Value,
) -> io::Result<()> {
    let entry = Entry {
        kind: KIND.into(),
        container_id: rt.container_id.clone(),
        config: base64(&list.bytes),
        if_name: rt.ifname.clone(),
        network_name: list.name.clone(),
        netns: rt.netns.to_string_lossy().into_owned(),
        cni_args: rt.args.clone(),
        capability_args: rt.capability_args.clone(),
        result: Some(result.clone()),
    };
    let path = cache_path(cache_dir, &list.name, rt);
    let dir = path.parent().expect("cache files live in a directory");
    fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&tmp, &entry)?;
    tmp.persist(&path)?;
    Ok(())
}

/// The cached ADD result of an attachment; `None` when there is no cache file.
pub fn read_result(cache_dir: &Path, network: &str, rt: &RuntimeConf) -> io::Result<Option<Value>> {
    let path = cache_path(cache_dir, network, rt);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let entry: Entry = serde_json::from_slice(&bytes)?;
    Ok(entry.result)
}

/// Removes an attachment's cache file; a missing one is fine.
pub fn remove(cache_dir: &Path, network: &str, rt: &RuntimeConf) -> io::Result<()> {
    match fs::remove_file(cache_path(cache_dir, network, rt)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Every attachment in the cache, sorted by file name; unreadable or foreign files are skipped
/// as libcni's `GetCachedAttachments` does.
pub fn attachments(cache_dir: &Path) -> io::Result<Vec<CachedAttachment>> {
    let dir = cache_dir.join("results");
    let mut names: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    names.sort();
    Ok(names
        .iter()
        .filter_map(|p| serde_json::from_slice::<Entry>(&fs::read(p).ok()?).ok())
        .filter(|e| e.kind == KIND && !e.if_name.is_empty() && !e.network_name.is_empty())
        .map(|e| CachedAttachment {
            network: e.network_name,
            rt: RuntimeConf {
                container_id: e.container_id,
                netns: e.netns.into(),
                ifname: e.if_name,
                args: e.cni_args,
                capability_args: e.capability_args,
            },
            result: e.result,
        })
        .collect())
}

/// Standard base64 with padding, as Go's encoding/json writes a `[]byte`.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let list =
            NetworkConfigList::from_bytes(br#"{"name":"n","plugins":[{"type":"a"}]}"#).unwrap();
        let rt = RuntimeConf {
            container_id: "c1".into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            args: vec![("K".into(), "V".into())],
            capability_args: Map::new(),
        };
        assert_eq!(read_result(dir.path(), "n", &rt).unwrap(), None);
        let result = json!({"cniVersion": "1.0.0"});
        write(dir.path(), &list, &rt, &result).unwrap();
        let file = dir.path().join("results/n-c1-eth0");
        let raw: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(raw["kind"], "cniCacheV1");
        assert_eq!(raw["config"], base64(&list.bytes));
        assert_eq!(raw["cniArgs"], json!([["K", "V"]]));
        assert_eq!(
            read_result(dir.path(), "n", &rt).unwrap(),
            Some(result.clone())
        );
        fs::write(dir.path().join("results/junk"), b"{").unwrap();
        let found = attachments(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].network.as_str(), &found[0].rt), ("n", &rt));
        remove(dir.path(), "n", &rt).unwrap();
        remove(dir.path(), "n", &rt).unwrap();
        assert!(!file.exists());
    }
}
