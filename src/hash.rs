//! Content hashes: SHA-256 over a canonical JSON form.
//!
//! serde_json's `Value` keeps object keys sorted (no `preserve_order` feature), so two specs that
//! differ only in key order serialize identically, and a default written out explicitly hashes
//! like the default left implicit.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

/// Hex SHA-256 of the canonical JSON form of `value`.
pub fn hash_json(value: &impl Serialize) -> String {
    let canonical = serde_json::to_value(value).expect("spec values serialize to JSON");
    let text = serde_json::to_string(&canonical).expect("a JSON value serializes");
    hash_bytes(text.as_bytes())
}

/// Hex SHA-256 of raw bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of a file, streamed, with its size in bytes.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = std::fs::File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// The identity of a model folder: `[{name: hash}, ...]` over its visible files (not its
/// subfolders), sorted by name, so moving the folder changes nothing and any edited file does.
pub fn hash_folder_files(dir: &Path) -> Result<serde_json::Value> {
    let mut names: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            (!name.starts_with('.')).then_some((name, p))
        })
        .collect();
    names.sort();
    let mut hashes = Vec::new();
    for (name, p) in names {
        hashes.push(serde_json::json!({ name: hash_file(&p)?.0 }));
    }
    Ok(serde_json::Value::Array(hashes))
}

/// The short form shown to people (12 hex digits).
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":{"x":2,"y":3}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":{"y":3,"x":2},"a":1}"#).unwrap();
        assert_eq!(hash_json(&a), hash_json(&b));
        let c: serde_json::Value = serde_json::from_str(r#"{"b":{"y":4,"x":2},"a":1}"#).unwrap();
        assert_ne!(hash_json(&a), hash_json(&c));
    }
}
