//! The demo runs to completion and tells the story it promises.

#[test]
fn demo_guests_exchange_datagrams_through_the_host() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasi-udp-demo"))
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout.matches("echo came back in").count(), 5, "{stdout}");
    assert_eq!(
        stdout.matches("[server] echoing \"ping").count(),
        5,
        "{stdout}"
    );
    assert!(
        stdout.contains("server store: 1 socket(s) created, 5 datagrams sent, 5 received"),
        "{stdout}"
    );
    assert!(
        stdout.contains("client store: 1 socket(s) created, 5 datagrams sent, 5 received"),
        "{stdout}"
    );
    assert!(stdout.contains("demo: ok"), "{stdout}");
}
