//! The policy off loopback, as users meet it: the README's DNS rule with a
//! real dnsmasq, the grant the CLI's warning prints, a server on a fixed
//! port, broadcast and IPv4 hidden in IPv6, each in a private network
//! namespace with its own addresses (see `netns/mod.rs`), and the warnings
//! read at the default verbosity.

mod netns;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns::{Daemon, ask, describe, finish, in_netns, installed, program, skip, wasi_udp};

const DNS_SERVER: &str = "10.53.0.53";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// dnsmasq answering for `*.lan` from a hosts file on 10.53.0.53:53, with
/// no upstream: `printer.lan` is 10.53.0.20 and fd53::20, any other `.lan`
/// name is NXDOMAIN.
fn start_dnsmasq() -> Option<Daemon> {
    if !installed("dnsmasq") {
        skip("dnsmasq is not installed (apt-get install dnsmasq)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "wasi-udp-dnsmasq-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "10.53.0.20 printer.lan\nfd53::20 printer.lan\n").expect("hosts");
    let mut daemon = Daemon::start(
        "dnsmasq",
        Command::new(program("dnsmasq"))
            .arg("--keep-in-foreground")
            .arg("--port=53")
            .arg(format!("--listen-address={DNS_SERVER}"))
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg("--local=/lan/")
            .arg("--pid-file=")
            .arg("--user=root")
            .arg("--conf-file=/dev/null"),
    );
    // Ready once it holds its port.
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind((DNS_SERVER, 53)).is_ok() {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(daemon)
}

#[test]
fn the_readme_dns_rule_gets_answers_off_loopback() {
    in_netns(&["10.53.0.53/32"], || {
        let Some(_dnsmasq) = start_dnsmasq() else {
            return;
        };
        // README: `wasi-udp --allow send,connect:10.0.0.0/8:53 dns_lookup.wasm ...`
        let output = wasi_udp(
            &[
                "--allow",
                "send,connect:10.0.0.0/8:53",
                guest_artifacts::EXAMPLE_DNS_LOOKUP,
                DNS_SERVER,
                "printer.lan",
                "nowhere.lan",
            ],
            Duration::from_secs(30),
        );
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        assert_eq!(
            text(&output.stdout),
            "printer.lan A 10.53.0.20\nprinter.lan AAAA fd53::20\nnowhere.lan NXDOMAIN\n",
            "{}",
            describe(&output)
        );
        assert!(
            !text(&output.stderr).contains("dropped"),
            "{}",
            describe(&output)
        );
    });
}

#[test]
fn the_grant_a_refusal_prints_is_the_one_that_works() {
    in_netns(&["10.53.0.53/32"], || {
        let Some(_dnsmasq) = start_dnsmasq() else {
            return;
        };
        let lookup = [
            guest_artifacts::EXAMPLE_DNS_LOOKUP,
            DNS_SERVER,
            "printer.lan",
        ];
        // Loopback only: the connect is refused, and the warning (at the
        // default verbosity) says what would grant it.
        let output = wasi_udp(&lookup, Duration::from_secs(30));
        assert_ne!(output.status.code(), Some(0), "{}", describe(&output));
        let stderr = text(&output.stderr);
        let grant = stderr
            .split("to grant it: --allow ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no grant in the warning: {}", describe(&output)));
        assert_eq!(grant, "connect,send:10.53.0.53:53");

        let mut args = vec!["--allow", grant];
        args.extend(lookup);
        let output = wasi_udp(&args, Duration::from_secs(30));
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        assert!(
            text(&output.stdout).starts_with("printer.lan A 10.53.0.20\n"),
            "{}",
            describe(&output)
        );
    });
}

/// Starts the echo server example on 0.0.0.0:5300 with `rules`, and asks
/// it to echo from a client at 10.53.0.2. Returns the echo (if any) and
/// what the run printed.
fn echo_through_server(
    rules: &[&str],
    within: Duration,
) -> (Option<Vec<u8>>, std::process::Output) {
    let mut args: Vec<&str> = rules.to_vec();
    args.extend([guest_artifacts::EXAMPLE_ECHO_SERVER, "0.0.0.0:5300", "1"]);
    let server = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args(&args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the echo server");
    let client = UdpSocket::bind("10.53.0.2:0").expect("bind the client");
    let server_addr: SocketAddr = "10.53.0.53:5300".parse().expect("addr");
    let echo = ask(&client, server_addr, b"hello", within);
    let output = finish(server, Duration::from_secs(5));
    (echo, output)
}

#[test]
fn a_server_on_a_fixed_port_needs_the_rules_the_readme_shows() {
    in_netns(&["10.53.0.53/32", "10.53.0.2/32"], || {
        // README: --allow bind:0.0.0.0:5300 --allow receive,send:10.53.0.0/24
        let (echo, output) = echo_through_server(
            &[
                "--allow",
                "bind:0.0.0.0:5300",
                "--allow",
                "receive,send:10.53.0.0/24",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(
            echo.as_deref(),
            Some(&b"hello"[..]),
            "{}",
            describe(&output)
        );
        assert!(
            text(&output.stdout).contains("echoed 5 bytes to 10.53.0.2:"),
            "{}",
            describe(&output)
        );

        // Without a receive rule the client's datagrams are dropped, and
        // the warning names the source and the flag that admits it.
        let (echo, output) =
            echo_through_server(&["--allow", "bind:0.0.0.0:5300"], Duration::from_secs(2));
        assert_eq!(echo, None, "{}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("dropped a datagram from 10.53.0.2:"),
            "{}",
            describe(&output)
        );
        assert!(
            stderr.contains("to admit it: --allow receive:10.53.0.2"),
            "{}",
            describe(&output)
        );
        // Once per source, then counted, however often the client retried.
        assert_eq!(stderr.matches("dropped a datagram").count(), 1, "{stderr}");

        // And without the bind rule, the fixed port on every interface is
        // refused outright.
        let (echo, output) = echo_through_server(
            &["--allow", "receive,send:10.53.0.0/24"],
            Duration::from_secs(1),
        );
        assert_eq!(echo, None);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("denied: bind 0.0.0.0:5300")
                && stderr.contains("to grant it: --allow bind:0.0.0.0:5300"),
            "{}",
            describe(&output)
        );
    });
}

#[test]
fn replies_to_an_unconnected_send_are_admitted_off_loopback() {
    in_netns(&["10.53.0.7/32"], || {
        let peer = UdpSocket::bind("10.53.0.7:7").expect("bind the peer");
        let thread = std::thread::spawn(move || {
            peer.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let mut buffer = [0; 512];
            if let Ok((len, from)) = peer.recv_from(&mut buffer) {
                let _ = peer.send_to(&buffer[..len], from);
            }
        });
        let output = wasi_udp(
            &[
                "--allow",
                "send:10.53.0.7:7",
                guest_artifacts::POLICY_PROBE,
                "socket 4",
                "bind 0.0.0.0:0",
                "unconnect",
                "send 10.53.0.7:7 ping",
                "recv 10000",
            ],
            Duration::from_secs(30),
        );
        let _ = thread.join();
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("> recv 10000: from 10.53.0.7:7: ping"),
            "{}",
            describe(&output)
        );
    });
}

#[test]
fn broadcast_needs_a_send_rule_and_then_the_kernel_decides() {
    // A broadcast address on the namespace's own loopback.
    in_netns(&["10.99.0.1/24 brd 10.99.0.255"], || {
        let probe = |rules: &[&str]| {
            let mut args = rules.to_vec();
            args.extend([
                guest_artifacts::POLICY_PROBE,
                "socket 4",
                "bind 0.0.0.0:0",
                "unconnect",
                "send 10.99.0.255:9 hello",
            ]);
            wasi_udp(&args, Duration::from_secs(30))
        };
        // No rule covers the broadcast address: the policy refuses it.
        let output = probe(&[]);
        assert!(
            text(&output.stdout).contains("> send 10.99.0.255:9 hello: error access-denied"),
            "{}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("denied: send 10.99.0.255:9"),
            "{}",
            describe(&output)
        );
        // A rule lets it through to the kernel, which refuses broadcast on a
        // socket without SO_BROADCAST: still access-denied, not a refusal
        // of the policy.
        let output = probe(&["--allow", "send:10.99.0.255"]);
        assert!(
            text(&output.stdout).contains("> send 10.99.0.255:9 hello: error access-denied"),
            "{}",
            describe(&output)
        );
        assert!(
            !text(&output.stderr).contains("denied:"),
            "{}",
            describe(&output)
        );
    });
}

#[test]
fn ipv4_deny_rules_refuse_ipv4_inside_ipv6() {
    in_netns(&[], || {
        let output = wasi_udp(
            &[
                "--inherit-network",
                "--deny",
                "192.0.2.0/24",
                guest_artifacts::POLICY_PROBE,
                "socket 6",
                "bind [::]:0",
                "unconnect",
                "send [64:ff9b::192.0.2.1]:53 x",
                "send [2002:c000:201::1]:53 x",
                "send [64:ff9b::198.51.100.1]:53 x",
            ],
            Duration::from_secs(30),
        );
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("> send [64:ff9b::192.0.2.1]:53 x: error access-denied"),
            "{}",
            describe(&output)
        );
        assert!(
            stdout.contains("> send [2002:c000:201::1]:53 x: error access-denied"),
            "{}",
            describe(&output)
        );
        // Not covered by the deny rule: the policy lets it through, and in
        // this namespace there is no route for it.
        assert!(
            stdout.contains("> send [64:ff9b::198.51.100.1]:53 x: error remote-unreachable"),
            "{}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("refused by the rule `deny all 192.0.2.0/24`"),
            "{}",
            describe(&output)
        );
    });
}

#[test]
fn allow_name_lookup_asks_the_systems_resolver() {
    in_netns(&["10.53.0.53/32"], || {
        let Some(_dnsmasq) = start_dnsmasq() else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("wasi-udp-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!("nameserver {DNS_SERVER}\noptions timeout:1 attempts:1\n"),
        )
        .expect("resolv.conf");
        if let Err(reason) = netns::use_resolver(&resolv) {
            skip(&reason);
            return;
        }
        let probe = |extra: &[&str]| {
            let mut args = extra.to_vec();
            args.extend([guest_artifacts::CLI_PROBE, "resolve", "printer.lan"]);
            wasi_udp(&args, Duration::from_secs(30))
        };
        // Without the flag the name is refused, and the warning says so.
        let output = probe(&[]);
        assert!(
            text(&output.stdout).contains("printer.lan: error"),
            "{}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("--allow-name-lookup"),
            "{}",
            describe(&output)
        );
        // With it, the system resolver asks dnsmasq.
        let output = probe(&["--allow-name-lookup", "--hosts-file", "/dev/null"]);
        assert!(
            text(&output.stdout).contains("printer.lan: ")
                && text(&output.stdout).contains("10.53.0.20"),
            "{}",
            describe(&output)
        );
    });
}
