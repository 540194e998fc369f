//! send to port 0 is invalid-argument ("The port in remote-address is set to 0").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(loopback(family, 0)),
        };
        expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
    }
}
