//! 2000 datagrams of varying size, sent in a window of 32 so none is dropped
//! for want of buffer space, arrive complete, byte-exact and in order.
use guest_tests::*;

const COUNT: u32 = 2000;
const WINDOW: u32 = 32;

fn payload(i: u32) -> Vec<u8> {
    let len = (i as usize * 37) % 1400 + 4;
    let mut data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
    data[..4].copy_from_slice(&i.to_be_bytes());
    data
}

fn main() {
    for family in FAMILIES {
        let (rx, rx_addr) = bound_socket(family);
        let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
        let (tx, _) = bound_socket(family);
        let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");
        let mut next_to_send = 0;
        let mut next_expected = 0;
        let pollable = rx_in.subscribe();
        let deadline = monotonic_clock::now() + 4 * TIMEOUT_NANOS;
        while next_expected < COUNT {
            assert!(
                monotonic_clock::now() < deadline,
                "timed out at {next_expected}"
            );
            let window_end = (next_expected + WINDOW).min(COUNT);
            let batch: Vec<OutgoingDatagram> = (next_to_send..window_end)
                .map(|i| OutgoingDatagram {
                    data: payload(i),
                    remote_address: Some(rx_addr),
                })
                .collect();
            send_all(&tx_out, &batch);
            next_to_send = window_end;
            let received = rx_in.receive(64).expect("receive");
            if received.is_empty() {
                wait(&pollable);
            }
            for datagram in received {
                assert!(
                    datagram.data == payload(next_expected),
                    "datagram {next_expected} differs or is out of order"
                );
                next_expected += 1;
            }
        }
    }
}
