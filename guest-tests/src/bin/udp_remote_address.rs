//! remote-address: invalid-state until stream(some), the peer after,
//! invalid-state again after stream(none).
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        expect_error(socket.remote_address(), ErrorCode::InvalidState);
        let (_, peer) = bound_socket(family);
        let streams = socket.stream(Some(peer)).expect("connect");
        assert!(same(
            &socket.remote_address().expect("remote-address"),
            &peer
        ));
        drop(streams);
        let streams = socket.stream(None).expect("disconnect");
        expect_error(socket.remote_address(), ErrorCode::InvalidState);
        drop(streams);
    }
}
