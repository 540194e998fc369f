//! stream() right after dropping streams that had a receive pending and a
//! pollable that was awaited (what wasi-libc's connect does) does not trap,
//! and the new streams work.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (peer, peer_addr) = bound_socket(family);
        let (peer_in, _peer_out) = peer.stream(None).expect("stream peer");
        for _ in 0..3 {
            let (incoming, outgoing) = socket.stream(None).expect("stream");
            assert!(incoming.receive(16).expect("receive").is_empty());
            let pollable = incoming.subscribe();
            assert!(!wait_at_most(&pollable, 1_000_000), "nothing was sent");
            let out_pollable = outgoing.subscribe();
            wait(&out_pollable);
            // Children first, as wasi-libc does.
            drop(pollable);
            drop(out_pollable);
            drop(incoming);
            drop(outgoing);
        }
        let (_incoming, outgoing) = socket.stream(Some(peer_addr)).expect("re-stream");
        send_one(&outgoing, b"after re-stream", None);
        assert_eq!(receive_exactly(&peer_in, 1)[0].data, b"after re-stream");

        // Pollables may even outlive their streams.
        drop((_incoming, outgoing));
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        let pollable = incoming.subscribe();
        drop((incoming, outgoing));
        let streams = socket
            .stream(None)
            .expect("stream with an old pollable alive");
        drop(pollable);
        drop(streams);
    }
}
