//! receive(0) returns [] even with data queued; receive on an empty queue
//! returns [] at once, never would-block.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (a, a_addr) = bound_socket(family);
        let (a_in, _a_out) = a.stream(None).expect("stream");
        assert!(a_in.receive(10).expect("receive on empty").is_empty());
        assert!(
            a_in.receive(u64::MAX)
                .expect("receive(max) on empty")
                .is_empty()
        );

        let (b, _) = bound_socket(family);
        let (_b_in, b_out) = b.stream(None).expect("stream");
        send_one(&b_out, b"queued", Some(a_addr));
        wait(&a_in.subscribe());
        assert!(a_in.receive(0).expect("receive(0)").is_empty());
        let got = a_in.receive(u64::MAX).expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, b"queued");
    }
}
