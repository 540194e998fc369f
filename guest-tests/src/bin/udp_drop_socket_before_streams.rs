//! Dropping the udp-socket before its streams and pollables is allowed; the
//! streams keep working until they are dropped.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let socket_pollable = socket.subscribe();
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        let in_pollable = incoming.subscribe();
        println!("about to drop a socket before its streams");
        drop(socket);

        let (peer, peer_addr) = bound_socket(family);
        let (peer_in, peer_out) = peer.stream(None).expect("stream peer");
        send_one(&peer_out, b"to an orphaned stream", Some(addr));
        wait(&in_pollable);
        assert_eq!(
            incoming.receive(1).expect("receive")[0].data,
            b"to an orphaned stream"
        );
        send_one(&outgoing, b"from an orphaned stream", Some(peer_addr));
        assert_eq!(
            receive_exactly(&peer_in, 1)[0].data,
            b"from an orphaned stream"
        );

        // A stream dropped before its pollable, and the socket's pollable
        // after everything.
        println!("about to drop a stream before its pollable");
        drop(incoming);
        drop(in_pollable);
        drop(outgoing);
        wait(&socket_pollable);
    }
}
