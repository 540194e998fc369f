//! The vendored WASI 0.2.1 WIT is byte-for-byte what `wit/wit.sha256`
//! records: no file changed, added or removed. (`wit/deps/extensions` is
//! ours, and versioned on its own.)

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The vendored WASI packages under `wit/deps`.
const WASI_PACKAGES: [&str; 3] = ["clocks", "io", "sockets"];

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

fn wit_files(dir: &Path, root: &Path, found: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).expect("read wit dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            wit_files(&path, root, found);
        } else if path.extension().is_some_and(|ext| ext == "wit") {
            let bytes = fs::read(&path).expect("read wit file");
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            let name = path.strip_prefix(root).expect("under root");
            found.insert(name.to_string_lossy().replace('\\', "/"), digest);
        }
    }
}

#[test]
fn vendored_wit_is_unchanged() {
    let root = wit_dir();
    let recorded: BTreeMap<String, String> = fs::read_to_string(root.join("wit.sha256"))
        .expect("read wit/wit.sha256")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (digest, name) = line.split_once("  ").expect("`DIGEST  PATH` lines");
            (name.to_owned(), digest.to_owned())
        })
        .collect();
    let mut found = BTreeMap::new();
    for package in WASI_PACKAGES {
        wit_files(&root.join("deps").join(package), &root, &mut found);
    }
    // Besides the WASI packages, deps/ holds only our own extensions.
    let mut packages: Vec<String> = fs::read_dir(root.join("deps"))
        .expect("read wit/deps")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    packages.sort();
    assert_eq!(packages, ["clocks", "extensions", "io", "sockets"]);
    assert_eq!(
        found, recorded,
        "wit/deps differs from wit/wit.sha256 (see wit/README.md)"
    );
    assert!(found.contains_key("deps/sockets/udp.wit"));
    assert!(found.contains_key("deps/io/poll.wit"));
}

#[test]
fn vendored_wit_is_version_0_2_1() {
    let udp = fs::read_to_string(wit_dir().join("deps/sockets/udp.wit")).expect("read udp.wit");
    assert!(udp.contains("use wasi:io/poll@0.2.1.{pollable};"));
    let world = fs::read_to_string(wit_dir().join("deps/sockets/world.wit")).expect("read");
    assert!(world.contains("package wasi:sockets@0.2.1;"));
}
