//! A valid datagram followed by an invalid one: the first is sent and the call returns ok(1) ("If at least one datagram has been sent successfully, this function never returns an error"); the peer receives exactly one.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (peer_socket, peer) = bound_socket(family);
        let (peer_in, _peer_out) = peer_socket.stream(None).expect("stream peer");
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        assert!(outgoing.check_send().expect("check-send") >= 2);
        let valid = OutgoingDatagram {
            data: b"valid".to_vec(),
            remote_address: Some(peer),
        };
        let invalid = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(loopback(family, 0)),
        };
        assert_eq!(outgoing.send(&[valid, invalid]).expect("partial batch"), 1);
        assert_eq!(receive_exactly(&peer_in, 1)[0].data, b"valid");
        assert!(
            !wait_at_most(&peer_in.subscribe(), 20_000_000),
            "only one datagram"
        );
    }
}
