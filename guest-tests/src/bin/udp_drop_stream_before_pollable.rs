//! Pollables may outlive the stream they came from: dropping a stream (or
//! its socket) first neither traps nor disturbs a new pair of streams, and
//! the old pollable can still be polled and dropped.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        let in_pollable = incoming.subscribe();
        let out_pollable = outgoing.subscribe();
        println!("about to drop streams before their pollables");
        drop((incoming, outgoing));
        let (incoming, outgoing) = socket
            .stream(None)
            .expect("stream with old pollables alive");
        wait(&out_pollable);
        drop(out_pollable);

        send_one(&outgoing, b"to myself", Some(addr));
        wait(&in_pollable);
        assert_eq!(receive_exactly(&incoming, 1)[0].data, b"to myself");
        drop(socket);
        drop((incoming, outgoing));
        drop(in_pollable);
    }
}
