//! A datagram already queued is returned by receive even if the guest never
//! polled: "returns successfully with an empty list when ... no results are
//! immediately available" is the only case for an empty list. The guest
//! sends to itself and calls receive repeatedly, never polling, until the
//! datagram shows up (loopback queues it within the send).
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        // First round: the reactor has seen the socket readable.
        send_one(&outgoing, b"first", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"first");
        assert!(incoming.receive(1).expect("receive").is_empty());
        // Second round: no poll between the send and the receives.
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"second".to_vec(),
            remote_address: Some(addr),
        };
        assert_eq!(outgoing.send(&[datagram]).expect("send"), 1);
        let got = (0..1000)
            .find_map(|_| incoming.receive(1).expect("receive").pop())
            .expect("a queued datagram is returned without polling");
        assert_eq!(got.data, b"second");
    }
}
