//! The simulated network from the command line: seeded faults that give
//! the same run every time, virtual time, host-side endpoints, packet
//! capture that tshark reads on either network, and per-socket counters.

mod netns;

use std::process::Command;
use std::time::{Duration, Instant};

use netns::{describe, installed, skip, wasi_udp};

const WITHIN: Duration = Duration::from_secs(60);

fn guest(name: &str) -> &'static str {
    guest_artifacts::ALL
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest {name}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasi-udp-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn the_same_seed_gives_the_same_run_and_the_same_capture() {
    let run = |pcap: &std::path::Path| {
        let output = wasi_udp(
            &[
                "--network",
                "sim",
                "--seed",
                "7",
                "--loss",
                "0.2",
                "--delay",
                "5..50",
                "--pcap",
                pcap.to_str().expect("path"),
                guest("sim_traffic"),
                "1000",
            ],
            WITHIN,
        );
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        text(&output.stdout)
    };
    let (first_pcap, second_pcap) = (temp("first.pcap"), temp("second.pcap"));
    let first = run(&first_pcap);
    let second = run(&second_pcap);
    assert_eq!(first, second);
    assert_eq!(
        std::fs::read(&first_pcap).expect("pcap"),
        std::fs::read(&second_pcap).expect("pcap"),
        "byte-identical captures"
    );
    let received: f64 = first
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .expect("received");
    let loss = 1.0 - received / 1000.0;
    assert!((0.16..=0.24).contains(&loss), "loss {loss}: {first}");
    // Jitter reorders datagrams.
    let order: Vec<u32> = first
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(order.windows(2).any(|w| w[0] > w[1]), "{first}");
    // Another seed, another run.
    let output = wasi_udp(
        &[
            "--network",
            "sim",
            "--seed",
            "8",
            "--loss",
            "0.2",
            "--delay",
            "5..50",
            guest("sim_traffic"),
            "1000",
        ],
        WITHIN,
    );
    assert_ne!(text(&output.stdout), first);
}

#[test]
fn simulated_delay_costs_no_real_time() {
    // 1000 round trips with 50 ms each way: 100 s of simulated time.
    let started = Instant::now();
    let output = wasi_udp(
        &[
            "--network",
            "sim",
            "--delay",
            "50",
            guest("bench_pingpong"),
            "1000",
        ],
        WITHIN,
    );
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let rtts: Vec<u64> = text(&output.stdout)
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(rtts.len(), 1000);
    assert!(
        rtts.iter().all(|rtt| *rtt >= 100_000_000),
        "every round trip is 100 ms"
    );
    assert!(
        elapsed < Duration::from_secs(25),
        "{elapsed:?} for 100 s of simulation"
    );
}

#[test]
fn a_capture_has_every_datagram_sent_and_received_on_either_network() {
    if !installed("tshark") {
        skip("tshark is not installed (apt-get install tshark)");
        return;
    }
    for network in ["kernel", "sim"] {
        let pcap = temp(&format!("{network}.pcap"));
        let output = wasi_udp(
            &[
                "--network",
                network,
                "--pcap",
                pcap.to_str().expect("path"),
                guest("sim_traffic"),
                "25",
            ],
            WITHIN,
        );
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let tshark = Command::new("tshark")
            .args([
                "-r",
                pcap.to_str().expect("path"),
                "-Y",
                "udp",
                "-T",
                "fields",
            ])
            .args(["-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.length"])
            .args(["-o", "udp.check_checksum:TRUE", "-e", "udp.checksum.status"])
            .output()
            .expect("run tshark");
        let fields = text(&tshark.stdout);
        let packets: Vec<&str> = fields.lines().collect();
        // 25 sent and the same 25 received.
        assert_eq!(packets.len(), 50, "{network}: {fields}");
        let ports: Vec<(&str, &str)> = packets
            .iter()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                assert_eq!(f[2], "72", "{network}: 64 bytes and the UDP header: {line}");
                assert_eq!(f[3], "1", "{network}: a good checksum: {line}");
                (f[0], f[1])
            })
            .collect();
        assert!(
            ports.windows(2).all(|w| w[0] == w[1]),
            "{network}: one flow: {fields}"
        );
    }
}

#[test]
fn stats_print_a_row_per_socket() {
    let output = wasi_udp(&["--stats", guest("sim_traffic"), "10"], WITHIN);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = text(&output.stderr);
    let rows: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "two sockets: {stderr}");
    let sent: Vec<&str> = rows[0].split_whitespace().collect();
    let received: Vec<&str> = rows[1].split_whitespace().collect();
    // The receiver was made first; columns: socket, ip, local, remote,
    // sent, bytes, received, bytes.
    assert_eq!(received[6], "10", "{stderr}");
    assert_eq!(sent[4], "10", "{stderr}");
    assert_eq!(sent[5], "640", "{stderr}");
}

#[test]
fn a_guest_talks_to_a_host_side_endpoint_at_any_address() {
    let output = wasi_udp(
        &[
            "--network",
            "sim",
            "--sim-echo",
            "10.0.0.53:7",
            "--allow",
            "connect,send:10.0.0.53:7",
            "--delay",
            "20",
            guest_artifacts::EXAMPLE_ECHO_CLIENT,
            "10.0.0.53:7",
            "5",
        ],
        WITHIN,
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "5 of 5 echoed, 0 retries\n");
}

#[test]
fn simulated_network_flags_are_checked() {
    for (args, expected) in [
        (
            &["--loss", "0.2"][..],
            "--loss shapes the simulated network: add --network sim",
        ),
        (
            &["--network", "sim", "--loss", "2"],
            "expected a chance from 0 to 1",
        ),
        (
            &["--network", "sim", "--delay", "50..5"],
            "the range is empty",
        ),
        (&["--network", "moon"], "invalid value 'moon'"),
    ] {
        let mut all = args.to_vec();
        all.push(guest("sim_traffic"));
        let output = wasi_udp(&all, WITHIN);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains(expected),
            "{args:?}: {}",
            describe(&output)
        );
    }
}

#[test]
fn explain_policy_says_which_network_and_capture() {
    let output = wasi_udp(&["--explain-policy"], WITHIN);
    assert!(
        text(&output.stdout).contains("Network: the operating system's"),
        "{}",
        describe(&output)
    );
    let output = wasi_udp(
        &[
            "--network",
            "sim",
            "--seed",
            "7",
            "--loss",
            "0.2",
            "--delay",
            "5..50",
            "--pcap",
            "run.pcap",
            "--explain-policy",
        ],
        WITHIN,
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("Network: simulated, seed 7, loss 20.0 %, delay 5..50 ms"),
        "{}",
        describe(&output)
    );
    assert!(
        stdout.contains("Capture: every datagram to run.pcap"),
        "{}",
        describe(&output)
    );
    let output = wasi_udp(&["--loss", "0.2", "--explain-policy"], WITHIN);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}
