//! An unconnected socket that sends to a closed port sees no error: ICMP
//! reports reach only connected sockets. A datagram to itself, sent after,
//! marks the point by which any report has arrived on loopback.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (closed_socket, closed) = bound_socket(family);
        drop(closed_socket);
        let (socket, addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        send_one(&outgoing, b"anyone?", Some(closed));
        send_one(&outgoing, b"marker", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"marker");
        send_one(&outgoing, b"again", Some(closed));
        send_one(&outgoing, b"marker 2", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"marker 2");
    }
}
