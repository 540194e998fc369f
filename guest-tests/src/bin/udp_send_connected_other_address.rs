//! send on a stream connected to one peer, addressed to another, is invalid-argument ("The socket is in "connected" mode and remote-address is some value that does not match the address passed to stream. (EISCONN)").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (_, peer) = bound_socket(family);
        let (_, other) = bound_socket(family);
        let (_incoming, outgoing) = socket.stream(Some(peer)).expect("connect");
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(other),
        };
        expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
    }
}
