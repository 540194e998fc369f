//! A host send-rate limit: COUNT datagrams of SIZE bytes go out through
//! check-send, which returns 0 once the tokens are spent; the guest then
//! waits on the stream's pollable, which wakes when tokens return.
//! Arguments: COUNT SIZE. Prints `sent N zero_permits Z elapsed_ns T`.
use guest_tests::*;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let [count, size] = args[..] else {
        panic!("usage: limit_send_rate COUNT SIZE")
    };
    let (receiver, receiver_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, _receiver_out) = receiver.stream(None).expect("stream receiver");
    let (sender, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_sender_in, outgoing) = sender.stream(Some(receiver_addr)).expect("stream sender");
    let ready = outgoing.subscribe();
    let datagram = OutgoingDatagram {
        data: vec![7; size as usize],
        remote_address: None,
    };

    let start = monotonic_clock::now();
    let deadline = start + 30 * 1_000_000_000;
    let (mut sent, mut zero_permits, mut received) = (0u64, 0u64, 0u64);
    while sent < count {
        assert!(
            monotonic_clock::now() < deadline,
            "sent only {sent} in 30 s"
        );
        let permitted = outgoing.check_send().expect("check-send");
        if permitted == 0 {
            zero_permits += 1;
            // "the subscribe pollable will become ready when this function
            // will report at least ok(1)"
            wait(&ready);
            assert!(
                outgoing.check_send().expect("check-send") >= 1,
                "the pollable woke but check-send still permits nothing"
            );
            continue;
        }
        let batch = vec![datagram.clone(); permitted.min(count - sent) as usize];
        sent += outgoing.send(&batch).expect("send");
        received += incoming.receive(64).expect("receive").len() as u64;
    }
    let elapsed = monotonic_clock::now() - start;
    received += receive_exactly(&incoming, (count - received) as usize).len() as u64;
    assert_eq!(received, count);
    println!("sent {sent} zero_permits {zero_permits} elapsed_ns {elapsed}");
}
