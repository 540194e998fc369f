//! Traffic to watch a network's faults by: COUNT numbered 64-byte
//! datagrams from one socket to another (IPv4 loopback), paced by
//! check-send, then receives until a second passes with nothing new.
//! Prints `sent N received M`, then the order they came in (the first 32),
//! then the elapsed time on the guest's monotonic clock.
use guest_tests::*;

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("COUNT"))
        .unwrap_or(100);
    let (receiver, receiver_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, _receiver_out) = receiver.stream(None).expect("stream");
    let (sender, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_sender_in, outgoing) = sender.stream(Some(receiver_addr)).expect("connect");
    let start = monotonic_clock::now();
    for n in 0..count {
        let mut data = n.to_be_bytes().to_vec();
        data.resize(64, 0);
        send_one(&outgoing, &data, None);
    }
    let mut order = Vec::new();
    let ready = incoming.subscribe();
    loop {
        let batch = incoming.receive(64).expect("receive");
        if batch.is_empty() {
            // A second of silence ends it.
            if !wait_at_most(&ready, 1_000_000_000) {
                break;
            }
            continue;
        }
        for datagram in batch {
            let bytes: [u8; 4] = datagram.data[..4].try_into().expect("4 bytes");
            order.push(u32::from_be_bytes(bytes));
        }
    }
    let elapsed_ms = (monotonic_clock::now() - start) / 1_000_000;
    println!("sent {count} received {}", order.len());
    let first: Vec<String> = order.iter().take(32).map(u32::to_string).collect();
    println!("order {}", first.join(" "));
    println!("elapsed_ms {elapsed_ms}");
}
