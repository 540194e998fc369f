//! `wasi-udp:extensions` on the kernel's network, as users meet it: two
//! guests that find each other by multicast, a guest that resolves a name a
//! real mDNS responder (Python's zeroconf) announces, a broadcast that
//! reaches three listeners sharing a port, and each refusal read at the
//! default verbosity. Each runs in a private network namespace with a veth
//! pair (10.99.0.1/24 on `v0`, 10.99.0.2/24 on `v1`) whose routes send
//! multicast and broadcast out of `v0`: nothing leaves the namespace.

mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns::{describe, finish, in_netns, ip, skip, wasi_udp};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The veth pair and its routes, in the calling thread's namespace.
fn multicast_link() -> Result<(), String> {
    // Link-local addresses usable at once, without duplicate detection.
    std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0")
        .map_err(|e| format!("cannot turn off IPv6 duplicate address detection: {e}"))?;
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])?;
    ip(&[
        "addr",
        "add",
        "10.99.0.1/24",
        "brd",
        "10.99.0.255",
        "dev",
        "v0",
    ])?;
    ip(&[
        "addr",
        "add",
        "10.99.0.2/24",
        "brd",
        "10.99.0.255",
        "dev",
        "v1",
    ])?;
    ip(&["link", "set", "v0", "up"])?;
    ip(&["link", "set", "v1", "up"])?;
    ip(&["route", "add", "224.0.0.0/4", "dev", "v0"])?;
    ip(&["route", "add", "255.255.255.255/32", "dev", "v0"])?;
    Ok(())
}

/// Runs `scenario` in a namespace with [`multicast_link`], or skips.
fn on_multicast_link(scenario: impl FnOnce() + Send + 'static) {
    in_netns(&[], || match multicast_link() {
        Ok(()) => scenario(),
        Err(reason) => skip(&format!("cannot make a veth pair: {reason}")),
    });
}

const RESPONDER_RULES: [&str; 8] = [
    "--allow",
    "share,bind:0.0.0.0:5353",
    "--allow",
    "join:224.0.0.251",
    "--allow",
    "send:224.0.0.251:5353",
    "--allow",
    "receive,send:10.99.0.0/24",
];

const RESOLVER_RULES: [&str; 6] = [
    "--allow",
    "join:224.0.0.251",
    "--allow",
    "send:224.0.0.251:5353",
    "--allow",
    "receive:10.99.0.0/24",
];

fn resolve(name: &str) -> std::process::Output {
    let mut args = RESOLVER_RULES.to_vec();
    args.extend([guest_artifacts::EXAMPLE_MDNS, "resolve", name, "10"]);
    wasi_udp(&args, Duration::from_secs(30))
}

#[test]
fn two_guests_find_each_other_by_multicast() {
    on_multicast_link(|| {
        let mut args = RESPONDER_RULES.to_vec();
        args.extend([
            guest_artifacts::EXAMPLE_MDNS,
            "respond",
            "printer.local",
            "10.99.0.20",
            "30",
        ]);
        let responder = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
            .args(&args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the responder");
        // The resolver asks once a second until it hears an answer.
        let resolved = resolve("printer.local");
        let responded = finish(responder, Duration::ZERO);
        assert_eq!(resolved.status.code(), Some(0), "{}", describe(&resolved));
        assert!(
            text(&resolved.stdout).contains("printer.local. A 10.99.0.20 (from 10.99.0.1:5353)"),
            "{}\nresponder:\n{}",
            describe(&resolved),
            describe(&responded)
        );
        assert!(
            text(&responded.stdout).contains("answered 10.99.0.1:"),
            "{}",
            describe(&responded)
        );
        assert!(
            !text(&resolved.stderr).contains("WARN"),
            "{}",
            describe(&resolved)
        );
    });
}

/// A responder written in Python with the `zeroconf` package, announcing
/// `NAME.local` at `ADDRESS` on 10.99.0.1.
const ZEROCONF_RESPONDER: &str = r#"
import socket, sys, time
from zeroconf import IPVersion, ServiceInfo, Zeroconf
name, address = sys.argv[1], sys.argv[2]
zc = Zeroconf(interfaces=["10.99.0.1"], ip_version=IPVersion.V4Only)
zc.register_service(ServiceInfo(
    "_http._tcp.local.", f"{name}._http._tcp.local.", port=80,
    addresses=[socket.inet_aton(address)], server=f"{name}.local."))
print("registered", flush=True)
time.sleep(60)
"#;

#[test]
fn a_guest_resolves_a_name_a_real_mdns_responder_announces() {
    let has_zeroconf = Command::new("python3")
        .args(["-c", "import zeroconf"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !has_zeroconf {
        skip("Python's zeroconf is not installed (python3 -m pip install zeroconf)");
        return;
    }
    on_multicast_link(|| {
        let mut responder = Command::new("python3")
            .args(["-c", ZEROCONF_RESPONDER, "zc-printer", "10.99.0.30"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the zeroconf responder");
        // Registering probes the name first (RFC 6762 §8), which takes
        // about a second; the script says when it is done.
        let stdout = responder.stdout.take().expect("piped");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let registered = BufReader::new(stdout)
                .lines()
                .any(|line| line.is_ok_and(|line| line == "registered"));
            let _ = ready_tx.send(registered);
        });
        let started = Instant::now();
        let registered = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or(false);
        if !registered {
            let output = finish(responder, Duration::ZERO);
            panic!(
                "zeroconf did not register within {:?}\n{}",
                started.elapsed(),
                describe(&output)
            );
        }
        let resolved = resolve("zc-printer.local");
        let _ = finish(responder, Duration::ZERO);
        assert_eq!(resolved.status.code(), Some(0), "{}", describe(&resolved));
        assert!(
            text(&resolved.stdout).contains("zc-printer.local. A 10.99.0.30 (from 10.99.0.1:5353)"),
            "{}",
            describe(&resolved)
        );
    });
}

#[test]
fn a_broadcast_reaches_three_listeners_sharing_a_port() {
    on_multicast_link(|| {
        for broadcast in ["255.255.255.255", "10.99.0.255"] {
            let grant = format!("broadcast,send:{broadcast}:47000");
            let output = wasi_udp(
                &[
                    "--allow",
                    "share,bind:0.0.0.0:47000",
                    "--allow",
                    &grant,
                    "--allow",
                    "receive:10.99.0.0/24",
                    guest_artifacts::EXT_BROADCAST_SHARED_PORT,
                    broadcast,
                    "47000",
                ],
                Duration::from_secs(30),
            );
            assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
            assert!(
                text(&output.stdout).contains("3 listeners on port 47000 heard the broadcast"),
                "{}",
                describe(&output)
            );
        }
    });
}

#[test]
fn each_refusal_is_access_denied_with_the_granting_flag() {
    on_multicast_link(|| {
        // `N: v0@v1: <...>`: the namespace's own view of its links.
        let link = Command::new("ip")
            .args(["-o", "link", "show", "v0"])
            .output()
            .expect("ip link show v0");
        let v0 = text(&link.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let output = wasi_udp(
            &[
                "--allow",
                "join:239.255.0.0/16",
                "--allow",
                "send:224.0.0.251:5353",
                "--allow",
                "send:255.255.255.255:9",
                "--allow",
                "join:[ff12::/16]",
                "--allow",
                "send:[ff12::1:3]:47002",
                "--allow",
                "bind:[::]:47002",
                "--allow",
                "receive:[fe80::/10]",
                guest_artifacts::EXT_OPTIONS_AND_REFUSALS,
                v0.trim(),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let stderr = text(&output.stderr);
        for grant in [
            "denied: join 224.0.0.251: no rule allows join; to grant it: --allow join:224.0.0.251\n",
            "denied: join 224.0.0.251:5353: no rule allows join; to grant it: --allow join:224.0.0.251\n",
            "to grant it: --allow broadcast:255.255.255.255:9\n",
            "to grant it: --allow share:127.0.0.1:47001\n",
        ] {
            assert!(
                stderr.contains(grant),
                "no `{grant}` in\n{}",
                describe(&output)
            );
        }

        // With the CLI's default policy, a multicast query names both
        // grants it needs.
        let output = wasi_udp(
            &[
                guest_artifacts::EXAMPLE_MDNS,
                "resolve",
                "printer.local",
                "1",
            ],
            Duration::from_secs(30),
        );
        assert_ne!(output.status.code(), Some(0), "{}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("access-denied"), "{}", describe(&output));
        for grant in ["--allow send:224.0.0.251:5353", "--allow join:224.0.0.251"] {
            assert!(
                stderr.contains(grant),
                "no `{grant}` in\n{}",
                describe(&output)
            );
        }
    });
}

#[test]
fn explain_policy_says_what_the_rules_grant_of_the_extensions() {
    let output = wasi_udp(&["--explain-policy"], Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for line in [
        "  join      join a multicast group or send to one (with send): none (e.g. --allow join:ADDRESS)",
        "  broadcast send to a broadcast address (with send): none (e.g. --allow broadcast:ADDRESS)",
        "  share     bind a shared port (with bind): none (e.g. --allow share:ADDRESS)",
    ] {
        assert!(stdout.contains(line), "no `{line}` in\n{stdout}");
    }
    let output = wasi_udp(
        &[
            "--explain-policy",
            "--allow",
            "join:224.0.0.251",
            "--allow",
            "share,bind:0.0.0.0:5353",
        ],
        Duration::from_secs(30),
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("(with send): join:224.0.0.251\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(with bind): bind,share:0.0.0.0:5353\n"),
        "{stdout}"
    );
}

#[test]
fn on_wasmtime_wasi_udp_a_guest_of_the_extensions_cannot_run_and_says_why() {
    let output = wasi_udp(
        &[
            "--udp",
            "wasmtime-wasi",
            guest_artifacts::EXT_BROADCAST_SHARED_PORT,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "cannot instantiate ext_broadcast_shared_port.wasm: the component imports \
             wasi-udp:extensions/udp-extensions@0.1.0 (multicast groups, broadcast and shared \
             ports), which this host does not provide."
        ),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("Run it without --udp wasmtime-wasi."),
        "{}",
        describe(&output)
    );
    // A guest of wasi:sockets/udp alone runs on either provider, and the
    // rules apply to wasmtime-wasi's through its address check.
    for provider in ["wasi-udp", "wasmtime-wasi"] {
        let output = wasi_udp(
            &["--udp", provider, guest_artifacts::UDP_SEND_RECEIVE],
            Duration::from_secs(30),
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{provider}: {}",
            describe(&output)
        );
        let output = wasi_udp(
            &[
                "--udp",
                provider,
                "--deny-all",
                guest_artifacts::UDP_SEND_RECEIVE,
            ],
            Duration::from_secs(30),
        );
        assert_ne!(
            output.status.code(),
            Some(0),
            "{provider}: {}",
            describe(&output)
        );
    }
}
