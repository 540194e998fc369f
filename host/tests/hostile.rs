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
