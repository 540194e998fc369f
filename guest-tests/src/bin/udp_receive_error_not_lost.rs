//! Datagrams queued together with an ICMP error: over successive receive
//! calls, every datagram and the error are each delivered exactly once;
//! nothing is dropped in between.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, addr) = bound_socket(family);
        let (peer, peer_addr) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(Some(peer_addr)).expect("connect");
        {
            let (_peer_in, peer_out) = peer.stream(Some(addr)).expect("stream peer");
            for i in 0..3u8 {
                send_one(&peer_out, &[i], None);
            }
        }
        // Wait until all three are queued before the peer goes away.
        wait(&incoming.subscribe());
        drop(peer);
        send_one(&outgoing, b"to a closed port", None);

        let mut data = Vec::new();
        let mut errors = Vec::new();
        let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
        let pollable = incoming.subscribe();
        while data.len() < 3 || errors.is_empty() {
            assert!(
                monotonic_clock::now() < deadline,
                "timed out: {data:?} {errors:?}"
            );
            match incoming.receive(2) {
                Ok(batch) if batch.is_empty() => wait(&pollable),
                Ok(batch) => data.extend(batch.into_iter().map(|d| d.data[0])),
                Err(code) => errors.push(code),
            }
        }
        assert_eq!(data, [0, 1, 2]);
        assert_eq!(errors, [ErrorCode::ConnectionRefused]);
        assert!(incoming.receive(8).expect("nothing more").is_empty());
    }
}
