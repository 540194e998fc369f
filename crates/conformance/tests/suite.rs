//! The suite against the in-process hosts: all of it passes on this
//! provider, and wasmtime-wasi's failures are exactly the ones
//! docs/conformance.md explains.

use wasi_udp_conformance::hosts::Against;
use wasi_udp_conformance::report::{self, Verdict};
use wasi_udp_conformance::{run_suite, suite};

#[test]
fn every_guest_passes_on_this_provider() {
    let against = Against::parse("ours").expect("host");
    let outcomes = run_suite(&against, suite::cases(), false, |_| {});
    let not_passed: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.verdict, Verdict::Passed))
        .map(report::line)
        .collect();
    // The backpressure guest needs a shaped loopback: tests/backpressure.rs.
    assert_eq!(not_passed.len(), 1, "{not_passed:#?}");
    assert!(
        not_passed[0].starts_with("skip  udp_check_send_backpressure"),
        "{not_passed:#?}"
    );
    assert!(
        outcomes.len() >= 60,
        "the suite has {} guests",
        outcomes.len()
    );
}

/// The guests wasmtime-wasi 48.0.8 fails, each explained in
/// docs/conformance.md.
const WASMTIME_WASI_FAILURES: &[&str] = &[
    "udp_disconnect_keeps_port",
    "udp_ipv6_flow_info_peer",
    "udp_local_address_between_binds",
    "udp_receive_error_not_lost",
    "udp_receive_without_polling",
    "udp_restream_after_pending_receive",
    "udp_restream_keeps_queued_datagram",
    "udp_send_empty_without_permit",
    "udp_send_error_not_lost",
    "udp_stream_between_binds",
];

#[test]
fn wasmtime_wasi_fails_only_the_documented_guests() {
    let against = Against::parse("wasmtime-wasi").expect("host");
    let outcomes = run_suite(&against, suite::cases(), false, |_| {});
    let mut failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Failed(_)))
        .map(|o| o.case.name)
        .collect();
    failed.sort();
    assert_eq!(failed, WASMTIME_WASI_FAILURES);
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/conformance.md"
    ))
    .expect("read docs/conformance.md");
    for name in WASMTIME_WASI_FAILURES {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/conformance.md does not explain {name}"
        );
    }
}

/// A bounded differential run: every difference between the two hosts is
/// one the classification explains, and none is this provider's bug.
#[test]
fn differential_seeds_show_no_unexplained_difference() {
    use wasi_udp_conformance::differential::{Class, compare};
    let ours = Against::parse("ours").expect("host");
    let theirs = Against::parse("wasmtime-wasi").expect("host");
    let mut identical = 0;
    for seed in 1..=100 {
        match compare(&ours, &theirs, seed, 40) {
            None => identical += 1,
            Some(difference) => assert!(
                matches!(difference.class, Class::Allowed(_) | Class::WasmtimeBug(_)),
                "seed {seed}: {}\n ours: {}\n wasmtime-wasi: {}",
                difference.class.label(),
                difference.ours,
                difference.theirs
            ),
        }
    }
    assert!(
        identical >= 50,
        "only {identical} of 100 seeds ran identically"
    );
}

#[test]
fn every_guest_passes_on_the_simulated_network() {
    let against = Against::parse("sim").expect("the simulated host");
    let outcomes = run_suite(&against, suite::cases(), false, |_| {});
    let not_passed: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.verdict, Verdict::Passed))
        .map(report::line)
        .collect();
    // The backpressure guest included: the simulated loopback is shaped by
    // the host, so check-send returns 0 without root.
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert!(outcomes.len() >= 60, "{}", report::closing_line(&outcomes));
}
