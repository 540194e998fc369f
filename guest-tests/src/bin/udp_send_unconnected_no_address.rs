//! send without an address on an unconnected stream is invalid-argument ("The socket is not "connected" and no value for remote-address was provided. (EDESTADDRREQ)").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: None,
        };
        expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
    }
}
