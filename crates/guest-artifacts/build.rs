//! Compiles every guest in `guest-tests/src/bin/` for `wasm32-wasip2`, and
//! every guest in `guest-tests/exact/src/bin/` for `wasm32-unknown-unknown`
//! (then encodes each such core module into a component from its own
//! bindings, so it imports exactly the WASI version it was written against),
//! and generates, per guest, a constant with the path of its component and an
//! entry in `foreach_guest!`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const CORE_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let guests = root.join("guest-tests");
    let examples = root.join("examples/guests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: build the guests
    // once beside the profiles, shared by debug and release host builds.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("wasm-guests");

    for watched in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "exact/src",
        "exact/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for watched in ["src", "Cargo.toml", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            examples.join(watched).display()
        );
    }

    let mut guests_at: Vec<(String, PathBuf)> = Vec::new();
    build_guests(&guests, &target_dir, "guest-tests", TARGET);
    build_guests(&examples, &target_dir, "example-guests", TARGET);
    let mut examples_at: Vec<(String, PathBuf)> = guest_names(&examples.join("src/bin"))
        .into_iter()
        .map(|name| {
            let path = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{name}.wasm"));
            (name, path)
        })
        .collect();
    examples_at.sort();
    for name in guest_names(&guests.join("src/bin")) {
        let path = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        guests_at.push((name, path));
    }
    build_guests(&guests, &target_dir, "exact-version-guests", CORE_TARGET);
    let components = target_dir.join("components");
    fs::create_dir_all(&components).expect("create the components folder");
    for name in guest_names(&guests.join("exact/src/bin")) {
        let core = target_dir
            .join(CORE_TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        let path = components.join(format!("{name}.wasm"));
        fs::write(&path, componentize(&core)).expect("write a component");
        guests_at.push((name, path));
    }
    guests_at.sort();
    let names: Vec<String> = guests_at.iter().map(|(name, _)| name.clone()).collect();

    let mut code = String::new();
    for (name, path) in &guests_at {
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
         /// `demo_` and `bench_` ones, which their own crates' tests run), so that a host test\n\
         /// file can insist that each guest has a test.\n#[macro_export]\nmacro_rules! foreach_guest {\n    ($mac:ident) => {\n",
    );
    for name in names
        .iter()
        .filter(|name| !name.starts_with("demo_") && !name.starts_with("bench_"))
    {
        writeln!(code, "        $mac!({name});").expect("write to string");
    }
    code.push_str("    };\n}\n/// Every guest: its name and the path of its component.\npub const ALL: &[(&str, &str)] = &[\n");
    for name in &names {
        writeln!(code, "    ({name:?}, {}),", name.to_uppercase()).expect("write to string");
    }
    code.push_str("];\n");
    for (name, path) in &examples_at {
        assert!(
            path.exists(),
            "example {name} was not built at {}",
            path.display()
        );
        assert!(
            !names.contains(name),
            "example {name} has the name of a test guest"
        );
        writeln!(
            code,
            "/// The `{name}` example component (`examples/guests`).\npub const EXAMPLE_{}: &str = {:?};",
            name.to_uppercase(),
            path.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("/// Every example guest: its name and the path of its component.\npub const EXAMPLES: &[(&str, &str)] = &[\n");
    for (name, _) in &examples_at {
        writeln!(code, "    ({name:?}, EXAMPLE_{}),", name.to_uppercase())
            .expect("write to string");
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

/// Encodes a core module, whose custom sections carry its WIT bindings, as a
/// component.
fn componentize(core: &Path) -> Vec<u8> {
    let module = fs::read(core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("encode {} as a component: {e:#}", core.display()))
}

fn build_guests(guests: &Path, target_dir: &Path, package: &str, target: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--bins")
        .arg("--package")
        .arg(package)
        .arg("--target")
        .arg(target)
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
            "building the {package} guests failed ({status}). They need the {target} target: \
             `rustup target add {TARGET} {CORE_TARGET}`"
        );
    }
}
