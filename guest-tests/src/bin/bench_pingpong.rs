//! Benchmark workload: ROUNDS round trips of a 64-byte datagram between two
//! sockets in this guest, each leg waiting on the receiving stream's
//! pollable. Argument: ROUNDS. Prints `rtt_ns` and every round's time,
//! space-separated.
use guest_tests::*;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS"))
        .unwrap_or(1000);
    let (a, a_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (b, b_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (a_in, a_out) = a.stream(Some(b_addr)).expect("stream a");
    let (b_in, b_out) = b.stream(Some(a_addr)).expect("stream b");
    let (a_ready, b_ready) = (a_in.subscribe(), b_in.subscribe());
    let ping = [OutgoingDatagram {
        data: vec![1; 64],
        remote_address: None,
    }];
    let mut times = Vec::with_capacity(rounds);
    let leg = |out: &OutgoingDatagramStream, inc: &IncomingDatagramStream, ready: &Pollable| {
        while out.check_send().expect("check-send") == 0 {}
        assert_eq!(out.send(&ping).expect("send"), 1);
        loop {
            if !inc.receive(1).expect("receive").is_empty() {
                return;
            }
            wait(ready);
        }
    };
    for _ in 0..rounds {
        let start = monotonic_clock::now();
        leg(&a_out, &b_in, &b_ready);
        leg(&b_out, &a_in, &a_ready);
        times.push(monotonic_clock::now() - start);
    }
    let times: Vec<String> = times.iter().map(u64::to_string).collect();
    println!("rtt_ns {}", times.join(" "));
}
