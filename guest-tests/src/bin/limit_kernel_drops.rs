//! Overflows a socket's receive queue: with the smallest receive buffer, a
//! burst of 200 datagrams is mostly dropped by the kernel. The drops cannot
//! be seen by the guest (UDP may lose datagrams), but the host counts them:
//! the host test checks the store's `dropped_kernel_queue`. Prints
//! `received N of 201`. With the argument `single`, every datagram is
//! received alone (`receive(1)`, as a request-response guest does), so the
//! host must count the drops without a batch receive.
use guest_tests::*;

fn main() {
    let (receiver, receiver_addr) = bound_socket(IpAddressFamily::Ipv4);
    receiver
        .set_receive_buffer_size(1)
        .expect("the smallest receive buffer");
    let (incoming, _receiver_out) = receiver.stream(None).expect("stream receiver");
    let (sender, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_sender_in, outgoing) = sender.stream(Some(receiver_addr)).expect("connect");
    let burst: Vec<OutgoingDatagram> = (0..200)
        .map(|_| OutgoingDatagram {
            data: vec![1; 1000],
            remote_address: None,
        })
        .collect();
    send_all(&outgoing, &burst);
    let batch_size = match std::env::args().nth(1).as_deref() {
        Some("single") => 1,
        _ => 64,
    };
    let mut received = 0;
    loop {
        let batch = incoming.receive(batch_size).expect("receive");
        if batch.is_empty() {
            break;
        }
        received += batch.len();
    }
    // The kernel reports its drop count with the next datagram it queues.
    send_one(&outgoing, b"after the burst", None);
    received += receive_exactly(&incoming, 1).len();
    println!("received {received} of 201");
    assert!(received < 201, "nothing was dropped");
}
