//! One pollable reused across 200 polls tracks readiness each time: ready
//! after each datagram arrives, and not ready once it is received.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (rx, rx_addr) = bound_socket(family);
        let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
        let (tx, _) = bound_socket(family);
        let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");
        let pollable = rx_in.subscribe();
        for i in 0..200u32 {
            send_one(&tx_out, &i.to_be_bytes(), Some(rx_addr));
            wait(&pollable);
            assert_eq!(rx_in.receive(1).expect("receive")[0].data, i.to_be_bytes());
        }
        assert!(!pollable.ready(), "nothing queued");
    }
}
