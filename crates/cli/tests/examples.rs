//! The examples (`examples/guests`) against real peers on loopback, each on
//! a port of its own: dnsmasq, chronyd, liblo's oscdump and oscsend, socat as
//! a syslog receiver, and the examples themselves as servers. Each checks the
//! exchange end to end, as the README's recipes show it.

mod netns;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use guest_artifacts::{
    EXAMPLE_DNS_LOOKUP, EXAMPLE_ECHO_CLIENT, EXAMPLE_ECHO_SERVER, EXAMPLE_GAME_LOOP, EXAMPLE_OSC,
    EXAMPLE_PATTERNS, EXAMPLE_SNTP_TIME, EXAMPLE_SYSLOG_SEND,
};
use netns::{Daemon, describe, installed, program, skip};

const WITHIN: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A free UDP port on 127.0.0.1 (bound and released, so that a daemon can
/// take it).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something holds UDP `port` on 127.0.0.1.
fn wait_for_port(port: u16, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "nothing took port {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wasi_udp(args: &[&str]) -> Output {
    netns::wasi_udp(args, WITHIN)
}

/// `wasi-udp ARGS` in the background, with its stdout lines on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run wasi-udp");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line starting with `prefix`, within 30 s.
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no line starting with {prefix:?} within 30 s"),
            }
        }
    }

    /// Waits for the run to end by itself (30 s at most); its exit code.
    fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon `name`, or a skip (a failure in CI) when it is not installed.
fn require(name: &str, package: &str) -> bool {
    if installed(name) {
        return true;
    }
    skip(&format!(
        "{name} is not installed (apt-get install {package})"
    ));
    false
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasi-udp-examples-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn dns_lookup_asks_dnsmasq() {
    if !require("dnsmasq", "dnsmasq") {
        return;
    }
    let dir = temp_dir("dns");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "10.53.0.20 printer.lan\nfd53::20 printer.lan\n").expect("hosts");
    let port = free_port();
    let mut dnsmasq = Daemon::start(
        "dnsmasq",
        Command::new(program("dnsmasq"))
            .arg("--keep-in-foreground")
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg("--local=/lan/")
            .arg("--pid-file=")
            .arg("--user=root")
            .arg("--conf-file=/dev/null"),
    );
    wait_for_port(port, &mut dnsmasq);
    let server = format!("127.0.0.1:{port}");
    let output = wasi_udp(&[EXAMPLE_DNS_LOOKUP, &server, "printer.lan", "nowhere.lan"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout),
        "printer.lan A 10.53.0.20\nprinter.lan AAAA fd53::20\nnowhere.lan NXDOMAIN\n"
    );
}

#[test]
fn sntp_time_asks_chronyd() {
    if !require("chronyd", "chrony") {
        return;
    }
    let dir = temp_dir("chrony");
    let port = free_port();
    let config = dir.join("chrony.conf");
    // A server of the local clock on a private port; -x below keeps chronyd
    // from ever touching the system clock.
    std::fs::write(
        &config,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 8\nallow 127.0.0.1\ncmdport 0\n\
             pidfile {}\n",
            dir.join("chronyd.pid").display()
        ),
    )
    .expect("config");
    let mut chronyd = Daemon::start(
        "chronyd",
        Command::new(program("chronyd"))
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&config),
    );
    wait_for_port(port, &mut chronyd);
    let output = wasi_udp(&[EXAMPLE_SNTP_TIME, &format!("127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("stratum 8, server time "), "{stdout}");
    // The server's clock is this machine's: the time is now.
    let seconds: f64 = stdout
        .split("server time ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("server time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!((seconds - now).abs() < 60.0, "{seconds} vs {now}");
}

#[test]
fn osc_talks_to_liblo_both_ways() {
    if !require("oscdump", "liblo-tools") || !require("oscsend", "liblo-tools") {
        return;
    }
    // The guest sends a message and a bundle; oscdump prints them.
    let port = free_port();
    let mut oscdump = Command::new("oscdump")
        .args(["-L", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oscdump");
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "oscdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = wasi_udp(&[EXAMPLE_OSC, "send", &format!("127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = oscdump.stdout.take().expect("stdout");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut dumped = Vec::new();
    while dumped.len() < 3 {
        match lines.recv_timeout(WITHIN) {
            Ok(line) => dumped.push(line),
            Err(_) => break,
        }
    }
    let _ = oscdump.kill();
    let _ = oscdump.wait();
    let dumped = dumped.join("\n");
    assert!(
        dumped.contains("/synth/freq ifs 440 0.500000 \"sine\""),
        "{dumped}"
    );
    assert!(dumped.contains("/mixer/gain f 0.800000"), "{dumped}");
    assert!(dumped.contains("/mixer/mute T"), "{dumped}");

    // oscsend sends typed arguments; the guest decodes them.
    let port = free_port();
    let listener = Running::start(&[EXAMPLE_OSC, "listen", &format!("127.0.0.1:{port}"), "2"]);
    listener.line_starting("listening on");
    for args in [
        &["/synth/freq", "ifs", "220", "0.25", "square"][..],
        &["/mixer/mute", "F"],
    ] {
        let status = Command::new("oscsend")
            .args(["127.0.0.1", &port.to_string()])
            .args(args)
            .status()
            .expect("oscsend");
        assert!(status.success());
    }
    assert_eq!(
        listener.line_starting("/synth"),
        "/synth/freq 220 0.25 \"square\""
    );
    assert_eq!(listener.line_starting("/mixer"), "/mixer/mute false");
    assert_eq!(listener.wait(), Some(0));
}

#[test]
fn syslog_messages_reach_a_receiver_in_rfc_5424() {
    if !require("socat", "socat") {
        return;
    }
    let port = free_port();
    let mut socat = Command::new("socat")
        .args(["-u", &format!("UDP-RECV:{port},bind=127.0.0.1"), "STDOUT"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start socat");
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "socat did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = wasi_udp(&[
        EXAMPLE_SYSLOG_SEND,
        &format!("127.0.0.1:{port}"),
        "thermostat",
        "temperature 21.5 C",
        "window opened",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = socat.stdout.take().expect("stdout");
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut all = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut reader, &mut chunk) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
            let _ = sender.send(String::from_utf8_lossy(&all).into_owned());
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + WITHIN;
    while seen.matches("<13>1 ").count() < 2 && Instant::now() < deadline {
        if let Ok(text) = received.recv_timeout(Duration::from_millis(100)) {
            seen = text;
        }
    }
    let _ = socat.kill();
    let _ = socat.wait();
    // Each datagram is one message: PRI, version, timestamp, host, app,
    // procid, msgid, structured data, message.
    for (id, message) in [(1, "temperature 21.5 C"), (2, "window opened")] {
        let line = seen
            .split("<13>1 ")
            .find(|m| m.ends_with(message))
            .unwrap_or_else(|| panic!("{message:?} not in {seen:?}"));
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        assert!(
            fields[0].ends_with('Z') && fields[0].contains('T'),
            "{line}"
        );
        assert_eq!(
            fields[1..4],
            ["wasi-guest", "thermostat", &id.to_string()],
            "{line}"
        );
        assert_eq!(
            fields[5],
            format!("[origin software=\"wasi-udp-example\"] {message}"),
            "{line}"
        );
    }
}

#[test]
fn the_echo_client_and_server_talk() {
    let port = free_port();
    let server = Running::start(&[EXAMPLE_ECHO_SERVER, &format!("127.0.0.1:{port}"), "5"]);
    server.line_starting("listening on");
    let output = wasi_udp(&[EXAMPLE_ECHO_CLIENT, &format!("127.0.0.1:{port}"), "5"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "5 of 5 echoed, 0 retries\n");
    assert_eq!(server.wait(), Some(0));
}

#[test]
fn the_game_loop_acknowledges_updates_at_a_fixed_rate() {
    let port = free_port();
    let server = Running::start(&[EXAMPLE_GAME_LOOP, "server", &format!("127.0.0.1:{port}")]);
    server.line_starting("listening on");
    let output = wasi_udp(&[
        EXAMPLE_GAME_LOOP,
        "client",
        &format!("127.0.0.1:{port}"),
        "60",
        "60",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    // On loopback nothing is lost; the loop tolerates it anyway.
    assert_eq!(stdout, "ticks 60 acked 60 lost 0 newest-acked 60\n");
    assert_eq!(
        server.line_starting("game over"),
        "game over after update 60"
    );
    assert_eq!(server.wait(), Some(0));
}

#[test]
fn the_patterns_programs_use() {
    let run_with = |flags: &[&str], pattern: &[&str]| {
        let mut args = flags.to_vec();
        args.push(EXAMPLE_PATTERNS);
        args.extend_from_slice(pattern);
        let output = wasi_udp(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            describe(&output)
        );
        text(&output.stdout)
    };
    let run = |pattern: &[&str]| run_with(&[], pattern);
    assert!(run(&["port0"]).starts_with("bound to 127.0.0.1:"));
    let stdout = run(&["send-recv"]);
    let (from, sender) = stdout
        .trim_end()
        .strip_prefix("received \"hello\" from ")
        .and_then(|rest| rest.split_once(" (the sender is "))
        .expect("a source");
    assert_eq!(format!("{from})"), sender);
    let port = free_port().to_string();
    assert_eq!(
        run(&["reuse", &port]),
        format!("rebound 127.0.0.1:{port}\n")
    );
    assert!(run(&["refused"]).contains("connection refused, reported on the next receive"));
    assert_eq!(
        run_with(
            &["--max-sockets", "10000", "--max-store-buffers", "128MiB"],
            &["many", "10000"]
        ),
        "holding 10000 sockets\n"
    );
    // Without a rate the sender never waits; with one, check-send says 0
    // and the pollable wakes it.
    assert!(run(&["backpressure", "1000"]).contains("check-send said 0 0 times"));
    let stdout = run_with(&["--send-rate", "2000"], &["backpressure", "1000"]);
    assert!(stdout.starts_with("sent 1000, received 1000"), "{stdout}");
    assert!(!stdout.contains("check-send said 0 0 times"), "{stdout}");
}
