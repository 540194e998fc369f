//! Runs of equal-sized datagrams (what a host may send segmented and receive
//! coalesced) arrive one datagram per list entry, with their own sizes, in
//! order, from their sender, even when each `receive` asks for fewer than a
//! run holds; the stream's pollable stays ready while any are left.
use guest_tests::*;

const RUN: u32 = 64;

/// Datagram `n` of a run of `size`-byte datagrams whose last is `last`
/// bytes: its number first, then a pattern.
fn payload(n: u32, size: usize, last: usize, run_end: u32) -> Vec<u8> {
    let len = if n + 1 == run_end { last } else { size };
    let mut data: Vec<u8> = (0..len).map(|j| (j as u32 ^ n) as u8).collect();
    data[..4].copy_from_slice(&n.to_be_bytes());
    data
}

/// Sends datagrams `first..first + RUN` and receives them `max` at a time.
fn exchange(
    rx_in: &IncomingDatagramStream,
    tx_out: &OutgoingDatagramStream,
    (to, from): (IpSocketAddress, IpSocketAddress),
    first: u32,
    (size, last): (usize, usize),
    max: u64,
) {
    let run_end = first + RUN;
    let batch: Vec<OutgoingDatagram> = (first..run_end)
        .map(|n| OutgoingDatagram {
            data: payload(n, size, last, run_end),
            remote_address: Some(to),
        })
        .collect();
    send_all(tx_out, &batch);
    let pollable = rx_in.subscribe();
    let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
    let mut next = first;
    while next < run_end {
        assert!(monotonic_clock::now() < deadline, "timed out at {next}");
        let received = rx_in.receive(max).expect("receive");
        assert!(received.len() as u64 <= max, "more than max-results");
        if received.is_empty() {
            wait(&pollable);
            continue;
        }
        for datagram in received {
            assert!(
                same(&datagram.remote_address, &from),
                "datagram {next} came from {:?}",
                datagram.remote_address
            );
            assert!(
                datagram.data == payload(next, size, last, run_end),
                "datagram {next} differs or is out of order ({} bytes)",
                datagram.data.len()
            );
            next += 1;
        }
        if next < run_end {
            assert!(
                wait_at_most(&pollable, 0),
                "datagrams are left, but the pollable is not ready"
            );
        }
    }
}

fn main() {
    for family in FAMILIES {
        let (rx, rx_addr) = bound_socket(family);
        let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
        let (tx, tx_addr) = bound_socket(family);
        let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");
        let addresses = (rx_addr, tx_addr);
        // Whole runs at a time: what a bulk receiver does.
        for run in 0..3 {
            exchange(&rx_in, &tx_out, addresses, run * RUN, (512, 512), 64);
        }
        // Then fewer per receive than a run holds, a shorter last datagram
        // in each run, and a size that does not divide 64 KiB.
        for run in 3..7 {
            exchange(&rx_in, &tx_out, addresses, run * RUN, (300, 100), 7);
        }
        exchange(&rx_in, &tx_out, addresses, 7 * RUN, (1000, 999), 1);
    }
}
