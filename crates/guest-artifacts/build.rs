//! Compiles every guest in `guest-tests/src/bin/` for `wasm32-wasip2` and
//! generates, per guest, a constant with the path of its component and an
//! entry in `foreach_guest!`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let guests = root.join("guest-tests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: build the guests
    // once beside the profiles, shared by debug and release host builds.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("wasm-guests");

    for watched in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", guests.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let names = guest_names(&guests.join("src/bin"));
    build_guests(&guests, &target_dir);

    let wasm_dir = target_dir.join(TARGET).join("release");
    let mut code = String::new();
    for name in &names {
        let path = wasm_dir.join(format!("{name}.wasm"));
        assert!(
            path.exists(),
            "guest {name} was not built at {}",
            path.display()
        );
        writeln!(
            code,
            "/// The `{name}` guest component.\npub const {}: &str = {:?};",
            name.to_uppercase(),
            path.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str(
        "/// Calls `$mac!(guest_name)` for every conformance guest (all but the\n\
         /// `demo_` ones, which the demo's own test runs), so that a host test\n\
         /// file can insist that each guest has a test.\n#[macro_export]\nmacro_rules! foreach_guest {\n    ($mac:ident) => {\n",
    );
    for name in names.iter().filter(|name| !name.starts_with("demo_")) {
        writeln!(code, "        $mac!({name});").expect("write to string");
    }
    code.push_str("    };\n}\n/// Every guest: its name and the path of its component.\npub const ALL: &[(&str, &str)] = &[\n");
    for name in &names {
        writeln!(code, "    ({name:?}, {}),", name.to_uppercase()).expect("write to string");
    }
    code.push_str("];\n");
    fs::write(out_dir.join("guests.rs"), code).expect("write guests.rs");
}

fn guest_names(bin_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(bin_dir)
        .expect("read guest-tests/src/bin")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

fn build_guests(guests: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--bins")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if guests.join("Cargo.lock").exists() {
        command.arg("--locked");
    }
    // The host build's flags and profile settings are not the guests'.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "RUSTFLAGS"
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET"
            || key.starts_with("CARGO_PROFILE_")
        {
            command.env_remove(key);
        }
    }
    let status = command.status().expect("run cargo to build the guests");
    if !status.success() {
        panic!(
            "building the wasm guests failed ({status}). They need the {TARGET} target: \
             `rustup target add {TARGET}`"
        );
    }
}
