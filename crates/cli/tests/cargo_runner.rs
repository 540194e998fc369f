//! `wasi-udp` as cargo's runner: a crate's own UDP tests, built for
//! wasm32-wasip2 and run through this provider, harness arguments and all.

use std::path::Path;
use std::process::Command;

#[test]
fn cargo_test_runs_a_crates_udp_tests_through_wasi_udp() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = root.join("examples/std-tests/Cargo.toml");
    // Beside the test guests, so that a second run builds nothing.
    let target_dir = root.join("target/wasm-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "test",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--", "--nocapture"])
        .env(
            "CARGO_TARGET_WASM32_WASIP2_RUNNER",
            env!("CARGO_BIN_EXE_wasi-udp"),
        )
        .env_remove("RUST_LOG");
    // This test's own build settings are not the crate's.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key == "RUSTFLAGS"
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET"
            || key.starts_with("CARGO_PROFILE_")
        {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("run cargo test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok. 4 passed; 0 failed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("Running unittests"), "{stderr}");
}
