//! stream(some(peer)): send without an address goes to the peer, send with
//! the peer's own address is accepted, and receive returns only the peer's
//! datagrams, even ones another socket queued before the association.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (a, a_addr) = bound_socket(family);
        let (b, b_addr) = bound_socket(family);
        let (stranger, _) = bound_socket(family);

        // Queued on `a` before it is associated with `b`.
        let (_s_in, s_out) = stranger.stream(None).expect("stream stranger");
        send_one(&s_out, b"from a stranger", Some(a_addr));
        let (a_in, _a_out) = a.stream(None).expect("stream a");
        wait(&a_in.subscribe());
        drop((a_in, _a_out));

        let (a_in, a_out) = a.stream(Some(b_addr)).expect("connect a to b");
        let (b_in, b_out) = b.stream(Some(a_addr)).expect("connect b to a");
        send_one(&a_out, b"no address", None);
        send_one(&a_out, b"peer address", Some(b_addr));
        let received = receive_exactly(&b_in, 2);
        assert_eq!(received[0].data, b"no address");
        assert_eq!(received[1].data, b"peer address");
        assert!(same(&received[0].remote_address, &a_addr));

        send_one(&b_out, b"back", None);
        let received = receive_exactly(&a_in, 1);
        assert_eq!(
            received[0].data, b"back",
            "the stranger's datagram must not be returned"
        );
        assert!(same(&received[0].remote_address, &b_addr));
        assert!(a_in.receive(10).expect("receive").is_empty());
    }
}
