//! send to 0.0.0.0 or :: is invalid-argument ("The IP address in remote-address is set to INADDR_ANY").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(unspecified(family, 9)),
        };
        expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
    }
}
