//! receive on an empty queue returns [] at once, every time, and never
//! would-block ("This function never returns error(would-block)").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let (incoming, _outgoing) = socket.stream(None).expect("stream");
        let start = monotonic_clock::now();
        for max in [1, 2, 16, 64, 65, 1000, u64::MAX] {
            for _ in 0..50 {
                assert!(incoming.receive(max).expect("receive").is_empty());
            }
        }
        assert!(
            monotonic_clock::now() - start < TIMEOUT_NANOS,
            "receive blocked"
        );
    }
}
