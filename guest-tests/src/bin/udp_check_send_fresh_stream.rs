//! A fresh outgoing stream permits at least one datagram at once, and its
//! pollable is ready ("When this function returns ok(0), the subscribe
//! pollable will become ready when this function will report at least ok(1)").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        let pollable = outgoing.subscribe();
        wait(&pollable);
        assert!(outgoing.check_send().expect("check-send") >= 1);
        assert!(pollable.ready());
    }
}
