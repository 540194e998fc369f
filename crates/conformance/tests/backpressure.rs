//! check-send under backpressure, which plain loopback cannot produce (the
//! loopback device releases a datagram's send-buffer charge as it hands it
//! over): the runner runs in a private network namespace whose loopback has
//! a rate-limited tbf qdisc, so datagrams queue and the send buffer fills.

use std::process::Command;

fn in_shaped_namespace(against: &str) -> std::process::Output {
    let runner = env!("CARGO_BIN_EXE_wasi-udp-conformance");
    let script = format!(
        "ip link set lo up && tc qdisc add dev lo root tbf rate 1mbit burst 1600 latency 200ms && \
         exec '{runner}' --against {against} --shaped-loopback --filter udp_check_send_backpressure"
    );
    Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .expect("run unshare (util-linux) with ip and tc (iproute2)")
}

/// Whether this process may make a network namespace and shape it (root,
/// with util-linux and iproute2), as CI can.
fn can_shape_loopback() -> bool {
    Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && tc qdisc show dev lo",
        ])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn check_send_returns_zero_and_the_pollable_wakes_when_room_returns() {
    if !can_shape_loopback() {
        // Said loudly rather than failed: the rest of the suite runs
        // unprivileged; CI runs as root and takes this path every time.
        eprintln!("SKIPPED: making a network namespace needs root, unshare and tc (iproute2)");
        return;
    }
    let output = in_shaped_namespace("ours");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed, 0 failed, 0 skipped"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
