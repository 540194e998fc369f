//! The harness runs end to end (`--quick`) and prints its table and the
//! headline ratios. Figures are not asserted: they are benchmark output.

#[test]
fn quick_run_prints_every_workload_and_the_headline() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasi-udp-bench"))
        .arg("--quick")
        .output()
        .expect("run the bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for workload in [
        "blast 64 B window 256",
        "blast 1400 B window 256",
        "blast 64 B unwindowed",
        "pingpong 64 B",
        "calls",
        "many-sockets 200",
        "idle 200",
        "stores 20",
    ] {
        assert!(
            stdout.contains(&format!("| {workload} |")),
            "{workload} missing:\n{stdout}"
        );
    }
    // Every run of every variant produced its figures: a failed run leaves
    // a dash in its cell and a line on stderr.
    assert!(
        !stderr.contains("run failed"),
        "a run failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("blast64Bwindow256 ours/wasmtime-wasi=")
            && stdout.contains("ours/native-mmsg=")
            && stdout.contains("calls-leg ours/native=")
            && stdout.contains("many-sockets200-rss ours/wasmtime-wasi=")
            && stdout.contains("stores20 ours/wasmtime-wasi="),
        "{stdout}"
    );
}
