//! A bounded run of the operation fuzzer for CI: seeded pseudo-random
//! inputs through the same `run` the `cargo fuzz` target calls. Longer runs:
//! `cargo +nightly fuzz run udp_ops` in `fuzz/` (see the README).

use std::time::{Duration, Instant};

/// xorshift64*: deterministic, so a failure names the seed that caused it.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// `VmRSS`, the resident set now, in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

#[test]
fn seeded_operation_sequences_keep_every_invariant() {
    // The first runs set up the thread's runtime (whose descriptors stay)
    // and warm the allocator.
    for seed in 0..500 {
        wasi_udp_fuzz_ops::run(&bytes(u64::MAX - seed, 800));
    }
    let descriptors_before = open_descriptors();
    let resident_before = resident_kib();
    let started = Instant::now();
    let (mut inputs, mut operations) = (0u64, 0usize);
    let (mut created, mut sent, mut received, mut denied) = (0, 0, 0, 0);
    for seed in 0..20_000u64 {
        // Bounded in time as well as count, for slow machines.
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
        let len = 16 + (seed as usize * 7919) % 1500;
        let input = bytes(seed, len);
        let ran = std::panic::catch_unwind(|| wasi_udp_fuzz_ops::run(&input))
            .unwrap_or_else(|_| panic!("seed {seed} broke an invariant (input length {len})"));
        operations += ran.operations;
        created += ran.stats.sockets_created;
        sent += ran.stats.datagrams_sent;
        received += ran.stats.datagrams_received;
        denied += ran.stats.denied;
        inputs += 1;
    }
    println!(
        "{inputs} inputs, {operations} operations: {created} sockets, {sent} datagrams sent, \
         {received} received, {denied} denials"
    );
    assert!(inputs >= 1000, "only {inputs} inputs ran");
    // The sequences reach past the first calls.
    assert!(sent > 0 && received > 0 && denied > 0, "shallow sequences");
    assert_eq!(
        open_descriptors(),
        descriptors_before,
        "descriptors leaked across {inputs} runs"
    );
    let grown = resident_kib().saturating_sub(resident_before);
    assert!(
        grown < 16 * 1024,
        "resident memory grew {grown} KiB across {inputs} runs"
    );
}
