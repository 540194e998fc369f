//! The embedder example end to end: tenants with their own policies on one
//! engine, counters per tenant, and a clean stop on SIGTERM.

use std::io::Read as _;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guest_artifacts::{EXAMPLE_ECHO_SERVER, EXAMPLE_PATTERNS};

fn config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasi-udp-embedder-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).expect("write");
    path
}

/// The counters row of `guest`: exit, sockets, sent, received, denied,
/// dropped.
fn row(table: &str, guest: &str) -> Vec<String> {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(guest))
        .unwrap_or_else(|| panic!("no row for {guest} in\n{table}"))
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn tenants_run_under_their_own_policies_and_are_counted() {
    let path = config(
        "finish",
        &format!(
            r#"
            [[guest]]
            name = "talker"
            component = "{EXAMPLE_PATTERNS}"
            args = ["send-recv"]

            [[guest]]
            name = "walled"
            component = "{EXAMPLE_PATTERNS}"
            args = ["send-recv"]
            base = "none"
            allow = ["bind:127.0.0.1:0"]

            [[guest]]
            name = "crowd"
            component = "{EXAMPLE_PATTERNS}"
            args = ["many", "50"]
            max-sockets = 20
            "#
        ),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_wasi-udp-embedder"))
        .arg(&path)
        .output()
        .expect("run the embedder");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("[talker] received \"hello\""), "{stdout}");
    // exit, sockets, sent, received, denied, dropped
    assert_eq!(
        row(&stdout, "talker"),
        ["0", "2", "1", "1", "0", "0"],
        "{stdout}"
    );
    let walled = row(&stdout, "walled");
    assert_eq!(walled[0], "trap", "{stdout}");
    assert_eq!(walled[4], "1", "the send was denied: {stdout}");
    let crowd = row(&stdout, "crowd");
    assert_eq!(
        (crowd[0].as_str(), crowd[1].as_str()),
        ("trap", "20"),
        "{stdout}"
    );
    assert!(stderr.contains("denied: send"), "{stderr}");
}

#[test]
fn sigterm_stops_every_tenant_and_keeps_their_counters() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a port")
        .port();
    let path = config(
        "stop",
        &format!(
            r#"
            [[guest]]
            name = "echo"
            component = "{EXAMPLE_ECHO_SERVER}"
            args = ["127.0.0.1:{port}"]
            "#
        ),
    );
    let mut embedder = Command::new(env!("CARGO_BIN_EXE_wasi-udp-embedder"))
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the embedder");
    // The echo server answers once it runs.
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buffer = [0; 64];
    loop {
        assert!(Instant::now() < deadline, "the echo tenant never answered");
        let _ = client.send_to(b"ping", ("127.0.0.1", port));
        if let Ok((4, _)) = client.recv_from(&mut buffer) {
            break;
        }
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(embedder.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal our child");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = embedder.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop the embedder"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    embedder
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("stdout");
    assert!(status.success(), "{stdout}");
    let echo = row(&stdout, "echo");
    assert_eq!(echo[0], "stopped", "{stdout}");
    assert!(echo[3].parse::<u64>().expect("received") >= 1, "{stdout}");
}
