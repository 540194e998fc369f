//! receive(n) with n above what is queued (and above any host batch cap)
//! returns what is queued, no more, in order ("The returned list may contain
//! fewer elements than requested, but never more").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (rx, rx_addr) = bound_socket(family);
        let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
        let (tx, _) = bound_socket(family);
        let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");
        for i in 0..3u8 {
            send_one(&tx_out, &[i], Some(rx_addr));
        }
        let mut got = Vec::new();
        let pollable = rx_in.subscribe();
        let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
        while got.len() < 3 {
            assert!(monotonic_clock::now() < deadline, "timed out with {got:?}");
            let batch = rx_in.receive(1_000_000).expect("receive");
            assert!(batch.len() <= 3 - got.len(), "more than was sent");
            if batch.is_empty() {
                wait(&pollable);
            }
            got.extend(batch.into_iter().map(|d| d.data));
        }
        assert_eq!(got, [[0], [1], [2]]);
        assert!(rx_in.receive(u64::MAX).expect("receive").is_empty());
    }
}
