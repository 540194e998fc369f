//! What hostile guests cannot do to the host: keep descriptors after their
//! store is gone (even after a trap), grow the host's memory with the amount
//! of abuse, or starve another store on the same engine.
//!
//! These tests measure the whole process (descriptors, resident memory), so
//! they take turns.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{run_async, run_unyielding, run_with_args, test_udp_ctx};

/// One test at a time: each measures the process.
static TURN: Mutex<()> = Mutex::new(());

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// `VmHWM` (peak resident set) in KiB.
fn peak_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn descriptors_come_back_after_100_000_cycles_and_after_a_trap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // A first run sets up what the process keeps (runtime, engine threads).
    let warm_up = run_with_args("hostile_socket_churn", test_udp_ctx().build(), &["10"]);
    assert_eq!(warm_up.exit, Ok(0), "{warm_up:?}");
    let before = open_descriptors();

    let outcome = run_with_args(
        "hostile_socket_churn",
        test_udp_ctx().max_sockets(256).build(),
        &["100000"],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert_eq!(outcome.stats.sockets_created, 100_000 + 256);
    assert_eq!(open_descriptors(), before, "after 100 000 cycles");

    let outcome = run_with_args("hostile_trap_mid_operation", test_udp_ctx().build(), &[]);
    assert!(outcome.exit.is_err(), "{outcome:?}");
    assert_eq!(
        open_descriptors(),
        before,
        "after a trap with 51 sockets open"
    );
}

#[test]
fn memory_does_not_grow_with_the_amount_of_flooding() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = run_with_args("hostile_flood", test_udp_ctx().build(), &["300"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    let after_short = peak_resident_kib();
    // Ten times the datagrams, each the largest there is.
    let outcome = run_with_args("hostile_flood", test_udp_ctx().build(), &["3000"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    let after_long = peak_resident_kib();
    println!(
        "peak resident: {after_short} KiB after 300 rounds, {after_long} KiB after 3000 \
         ({} datagrams of 65 507 bytes in the long run)",
        outcome.stats.datagrams_sent
    );
    assert!(
        after_long <= after_short + 16 * 1024,
        "peak resident grew from {after_short} KiB to {after_long} KiB"
    );
}

#[test]
fn memory_does_not_grow_with_socket_churn_in_a_guest_that_never_yields() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // Without epoch interruption the runtime never gets a turn while this
    // guest runs; nothing the provider frees may depend on that turn.
    let ctx = || test_udp_ctx().max_sockets(64).build();
    let outcome = run_unyielding("hostile_socket_churn", ctx(), &["20000"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    let after_short = peak_resident_kib();
    let outcome = run_unyielding("hostile_socket_churn", ctx(), &["200000"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    let after_long = peak_resident_kib();
    println!(
        "peak resident: {after_short} KiB after 20 000 cycles, {after_long} KiB after 200 000"
    );
    assert!(
        after_long <= after_short + 16 * 1024,
        "peak resident grew from {after_short} KiB to {after_long} KiB"
    );
}

#[test]
fn another_store_keeps_exchanging_while_a_guest_floods_and_churns() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Two hostile stores run until stopped.
        let flood = tokio::spawn(run_async("hostile_flood", test_udp_ctx().build(), &["0"]));
        let churn = tokio::spawn(run_async(
            "hostile_socket_churn",
            test_udp_ctx().max_sockets(64).build(),
            &["100000000"],
        ));
        // The victim: round trips between two sockets of its own store.
        let started = Instant::now();
        let victim = run_async("bench_pingpong", test_udp_ctx().build(), &["2000"]).await;
        let elapsed = started.elapsed();
        assert_eq!(victim.exit, Ok(0), "{victim:?}");
        assert!(
            !flood.is_finished() && !churn.is_finished(),
            "the hostile stores stopped before the victim finished"
        );
        flood.abort();
        churn.abort();
        let mut rtts: Vec<u64> = victim
            .stdout
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        rtts.sort_unstable();
        let median = Duration::from_nanos(rtts[rtts.len() / 2]);
        println!("victim: 2000 round trips in {elapsed:?}, median {median:?}");
        // Generous bounds: a starved store would not finish at all, or
        // would wait whole scheduling slices per round trip.
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
        assert!(
            median < Duration::from_millis(5),
            "median round trip {median:?}"
        );
    });
}

/// Receives the report `hostile_hold_sockets` sends once it holds its
/// sockets: (sockets held, control port, the held sockets' ports).
fn await_holding(report: &std::net::UdpSocket) -> (usize, u16, Vec<u16>) {
    report
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buffer = vec![0; 65_536];
    let (len, _) = report
        .recv_from(&mut buffer)
        .expect("the hostile guest reports within 60 s");
    let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words[0], "holding", "{text}");
    let held = words[1].parse().expect("count");
    let control = words[3].parse().expect("control port");
    let ports = words[5..]
        .iter()
        .map(|p| p.parse().expect("port"))
        .collect();
    (held, control, ports)
}

fn stop(control: u16) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .send_to(b"stop", ("127.0.0.1", control))
        .expect("stop");
}

const DESCRIPTOR_CHILD: &str = "WASI_UDP_HOSTILE_DESCRIPTOR_CHILD";

#[test]
fn a_store_at_the_descriptor_limit_leaves_another_store_working() {
    if std::env::var_os(DESCRIPTOR_CHILD).is_some() {
        return two_stores_under_1024_descriptors();
    }
    // The scenario runs in a child process whose descriptor limit is 1024,
    // the usual default, so that it does not touch this process's limit.
    let exe = std::env::current_exe().expect("test executable");
    let script = format!(
        "ulimit -n 1024 && exec '{}' --exact \
         a_store_at_the_descriptor_limit_leaves_another_store_working --nocapture",
        exe.display()
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env(DESCRIPTOR_CHILD, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("the other store passed"), "{stdout}");
}

fn two_stores_under_1024_descriptors() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the report socket");
    let report_addr = report.local_addr().expect("addr").to_string();
    // The hostile store may hold as many sockets as the process allows.
    let hostile = runtime.spawn(async move {
        run_async(
            "hostile_hold_sockets",
            test_udp_ctx().max_sockets(100_000).build(),
            &["100000", "60", &report_addr],
        )
        .await
    });
    let (held, control, _) = await_holding(&report);
    println!("the hostile store holds {held} sockets");
    assert!(held > 500, "it got most of the descriptors: {held}");

    // A store built now still instantiates its guest (the process has the
    // descriptors for that) and gets sockets of its own.
    let other = runtime.block_on(run_async("udp_send_receive", test_udp_ctx().build(), &[]));
    assert_eq!(other.exit, Ok(0), "{other:?}");
    println!("the other store passed");

    stop(control);
    let hostile = runtime.block_on(hostile).expect("hostile task");
    assert_eq!(hostile.exit, Ok(0), "{hostile:?}");
    assert!(hostile.stats.socket_limit_hits >= 1, "{hostile:?}");
}

/// Sum of the receive queues, in bytes as the kernel accounts them, of the
/// loopback IPv4 sockets on `ports` (from `/proc/self/net/udp`).
fn receive_queue_bytes(ports: &std::collections::HashSet<u16>) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/self/net/udp").expect("/proc/self/net/udp");
    let (mut bytes, mut drops) = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some((_, port)) = fields[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        if !ports.contains(&port) {
            continue;
        }
        let queues = fields[4];
        let rx = queues.split_once(':').map_or("0", |(_, rx)| rx);
        bytes += u64::from_str_radix(rx, 16).unwrap_or(0);
        drops += fields
            .last()
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (bytes, drops)
}

#[test]
fn sockets_that_never_read_hold_at_most_the_stores_buffer_budget() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the report socket");
    let report_addr = report.local_addr().expect("addr").to_string();
    let limits = wasi_udp_host::Limits::default();
    let hostile = runtime.spawn(async move {
        run_async(
            "hostile_hold_sockets",
            wasi_udp_host::UdpCtx::builder().allow_loopback().build(),
            &["100000", "60", &report_addr],
        )
        .await
    });
    let (held, control, ports) = await_holding(&report);
    // Default limits: every socket but the control one.
    assert_eq!(held, limits.max_sockets - 1, "default limits");
    // Fill every queue: more 1000-byte datagrams than any default buffer
    // holds, to each socket.
    let flooder = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the flooder");
    let datagram = [0x42u8; 1000];
    for round in 0..300 {
        for port in &ports {
            // A full queue drops silently; a full send buffer just waits.
            let _ = flooder.send_to(&datagram, ("127.0.0.1", *port));
        }
        if round % 50 == 0 {
            std::thread::yield_now();
        }
    }
    let ports: std::collections::HashSet<u16> = ports.into_iter().collect();
    let (queued, drops) = receive_queue_bytes(&ports);
    // Each socket may hold one datagram beyond its buffer (its truesize
    // for 1000 bytes is a few KiB at most).
    let bound = limits.max_store_buffers as u64 + held as u64 * 4096;
    println!(
        "{held} sockets that never read hold {} KiB of kernel receive queues \
         (store budget {} KiB, bound {} KiB; the kernel dropped {drops} datagrams)",
        queued / 1024,
        limits.max_store_buffers / 1024,
        bound / 1024
    );
    assert!(queued <= bound, "{queued} > {bound}");
    assert!(drops > 0, "the queues were filled");
    stop(control);
    let hostile = runtime.block_on(hostile).expect("hostile task");
    assert_eq!(hostile.exit, Ok(0), "{hostile:?}");
}

#[test]
fn a_send_of_1900_records_over_one_buffer_traps_without_the_host_copying_them() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let one = run_with_args("hostile_send_many_records", test_udp_ctx().build(), &["1"]);
    assert_eq!(one.exit, Ok(0), "{one:?}");
    assert!(one.stdout.contains("sent 1"), "{one:?}");
    let after_one = peak_resident_kib();
    let many = run_with_args(
        "hostile_send_many_records",
        test_udp_ctx().build(),
        &["1900"],
    );
    let after_many = peak_resident_kib();
    println!(
        "peak resident: {after_one} KiB after a one-record send, {after_many} KiB after the \
         1900-record one"
    );
    let trap = many.exit.expect_err("the call must trap");
    assert!(trap.contains("fuel"), "{trap}");
    assert!(
        after_many <= after_one + 8 * 1024,
        "peak resident grew from {after_one} KiB to {after_many} KiB"
    );
}
