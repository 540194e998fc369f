//! After stream(some(peer)) and then stream(none) — and after connecting to
//! A and then to B — local-address keeps its port, and datagrams sent to
//! that port still arrive.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        for wildcard in [false, true] {
            let socket = socket(family);
            let requested = if wildcard {
                unspecified(family, 0)
            } else {
                loopback(family, 0)
            };
            bind(&socket, requested).expect("bind");
            let bound = socket.local_address().expect("local-address");
            let port_before = port(&bound);
            let (peer_a, a_addr) = bound_socket(family);
            let (_peer_b, b_addr) = bound_socket(family);

            drop(socket.stream(Some(a_addr)).expect("connect to a"));
            assert_eq!(port(&socket.local_address().expect("local")), port_before);
            drop(socket.stream(Some(b_addr)).expect("connect to b"));
            assert_eq!(port(&socket.local_address().expect("local")), port_before);
            let (incoming, _outgoing) = socket.stream(None).expect("disconnect");
            let after = socket.local_address().expect("local-address");
            assert_eq!(port(&after), port_before, "port kept after disconnect");
            assert!(
                same(&after, &with_port(requested, port_before)),
                "{after:?}"
            );

            let (_a_in, a_out) = peer_a.stream(None).expect("stream a");
            send_one(
                &a_out,
                b"to the old port",
                Some(loopback(family, port_before)),
            );
            let got = receive_exactly(&incoming, 1);
            assert_eq!(got[0].data, b"to the old port");
            assert!(same(&got[0].remote_address, &a_addr));
        }
    }
}
