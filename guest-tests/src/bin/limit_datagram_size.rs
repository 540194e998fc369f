//! A host limit on datagram size (argument MAX, which the host configures):
//! a send larger than MAX is datagram-too-large before anything is sent,
//! MAX itself goes through. With a second argument, the port of a helper
//! outside the store: the guest says hello, the helper answers with a
//! datagram larger than MAX and then a small one, and only the small one
//! arrives (the host drops and counts the other).
use guest_tests::*;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let max = args[0] as usize;
    let (receiver, receiver_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, receiver_out) = receiver.stream(None).expect("stream receiver");
    let (sender, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_sender_in, outgoing) = sender.stream(Some(receiver_addr)).expect("stream sender");

    let too_large = OutgoingDatagram {
        data: vec![1; max + 1],
        remote_address: None,
    };
    assert!(outgoing.check_send().expect("check-send") >= 1);
    expect_error(outgoing.send(&[too_large]), ErrorCode::DatagramTooLarge);
    send_one(&outgoing, &vec![2; max], None);
    let received = receive_exactly(&incoming, 1);
    assert_eq!(received[0].data.len(), max);

    if let Some(&helper_port) = args.get(1) {
        let helper = loopback(IpAddressFamily::Ipv4, helper_port as u16);
        send_one(&receiver_out, b"hello", Some(helper));
        let answer = receive_exactly(&incoming, 1);
        assert_eq!(
            answer[0].data, b"small",
            "the oversized datagram came through"
        );
    }
}
