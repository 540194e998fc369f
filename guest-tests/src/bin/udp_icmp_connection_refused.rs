//! A connected send to a closed port makes a later receive or send fail with
//! connection-refused, once; the socket stays usable. An unconnected socket
//! sending to the same closed port sees no error.
use guest_tests::*;

fn closed_port(family: IpAddressFamily) -> IpSocketAddress {
    let (socket, addr) = bound_socket(family);
    drop(socket);
    addr
}

fn main() {
    for family in FAMILIES {
        let closed = closed_port(family);

        // Connected: the ICMP port-unreachable comes back as an error.
        let (socket, addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(Some(closed)).expect("connect");
        send_one(&outgoing, b"anyone?", None);
        expect_error(
            receive_next(&incoming, 8).map(|_| ()),
            ErrorCode::ConnectionRefused,
        );
        // Reported once: the next receive finds nothing.
        assert!(
            incoming
                .receive(8)
                .expect("receive after the error")
                .is_empty()
        );

        // Still usable: associate with a live peer and exchange.
        drop((incoming, outgoing));
        let (peer, peer_addr) = bound_socket(family);
        let (peer_in, peer_out) = peer.stream(None).expect("stream peer");
        let (incoming, outgoing) = socket.stream(Some(peer_addr)).expect("reconnect");
        send_one(&outgoing, b"hello", None);
        assert_eq!(receive_exactly(&peer_in, 1)[0].data, b"hello");
        send_one(&peer_out, b"hi", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"hi");

        // Unconnected: no error. A datagram to itself, sent after the one to
        // the closed port, marks the point by which any ICMP report has
        // arrived on loopback.
        let (socket, addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        send_one(&outgoing, b"anyone?", Some(closed));
        send_one(&outgoing, b"marker", Some(addr));
        let got = receive_exactly(&incoming, 1);
        assert_eq!(got[0].data, b"marker");
        send_one(&outgoing, b"marker 2", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"marker 2");
    }
}
