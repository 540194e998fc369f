//! A datagram that arrived while streams existed, never received, is still
//! there after the streams are dropped and recreated.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let (peer, peer_addr) = bound_socket(family);
        let (_peer_in, peer_out) = peer.stream(None).expect("stream peer");

        let (incoming, outgoing) = socket.stream(None).expect("stream");
        send_one(&peer_out, b"survivor", Some(addr));
        wait(&incoming.subscribe());
        assert!(incoming.receive(0).expect("receive(0)").is_empty());
        drop((incoming, outgoing));

        let (incoming, _outgoing) = socket.stream(None).expect("re-stream");
        let got = receive_exactly(&incoming, 1);
        assert_eq!(got[0].data, b"survivor");
        assert!(same(&got[0].remote_address, &peer_addr));
    }
}
