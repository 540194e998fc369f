//! Connecting to peer A, then to peer B, keeps the local port, and the
//! socket then exchanges with B only.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let (_a, a_addr) = bound_socket(family);
        let (b, b_addr) = bound_socket(family);
        drop(socket.stream(Some(a_addr)).expect("connect to a"));
        let (incoming, outgoing) = socket.stream(Some(b_addr)).expect("connect to b");
        assert_eq!(port(&socket.local_address().expect("local")), port(&addr));
        assert!(same(&socket.remote_address().expect("remote"), &b_addr));
        let (b_in, b_out) = b.stream(None).expect("stream b");
        send_one(&outgoing, b"to b", None);
        let got = receive_exactly(&b_in, 1);
        assert!(same(&got[0].remote_address, &addr), "from the same port");
        send_one(&b_out, b"to you", Some(addr));
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"to you");
    }
}
