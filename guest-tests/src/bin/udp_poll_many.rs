//! Several sockets and a clock in one poll: exactly the ready ones are
//! reported. One pollable is reused across many polls.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let sockets: Vec<_> = (0..4).map(|_| bound_socket(family)).collect();
        let streams: Vec<_> = sockets
            .iter()
            .map(|(socket, _)| socket.stream(None).expect("stream"))
            .collect();
        let pollables: Vec<_> = streams
            .iter()
            .map(|(incoming, _)| incoming.subscribe())
            .collect();
        let clock = monotonic_clock::subscribe_duration(TIMEOUT_NANOS);

        // Datagrams to sockets 1 and 3 only, each sent by socket 0.
        for target in [1, 3] {
            send_one(&streams[0].1, b"ping", Some(sockets[target].1));
        }
        let mut ready = Vec::new();
        let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
        while ready.len() < 2 {
            assert!(monotonic_clock::now() < deadline, "timed out: {ready:?}");
            let mut list: Vec<&Pollable> = pollables.iter().collect();
            list.push(&clock);
            for index in poll(&list) {
                assert_ne!(index, 4, "the clock fired: not all datagrams arrived");
                assert!(
                    index == 1 || index == 3,
                    "socket {index} was reported ready"
                );
                if !ready.contains(&index) {
                    ready.push(index);
                    let got = streams[index as usize].0.receive(4).expect("receive");
                    assert_eq!(got.len(), 1);
                }
            }
        }

        // One pollable, many polls.
        let (incoming, _) = &streams[2];
        let pollable = incoming.subscribe();
        for i in 0..50u8 {
            send_one(&streams[0].1, &[i], Some(sockets[2].1));
            wait(&pollable);
            assert_eq!(incoming.receive(1).expect("receive")[0].data, [i]);
        }
        // Not ready once drained.
        assert!(!pollable.ready(), "no datagram is queued");
    }
}
