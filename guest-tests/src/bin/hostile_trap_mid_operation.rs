//! Hostile: traps in the middle of everything: sockets bound and
//! streaming, a bind started and never finished, a permit not spent,
//! datagrams queued and unread, pollables alive. The host must release all
//! of it with the store. Prints `trapping` just before.
use guest_tests::*;

fn main() {
    let mut keep = Vec::new();
    for _ in 0..50 {
        let (socket, addr) = bound_socket(IpAddressFamily::Ipv4);
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        send_one(&outgoing, b"unread", Some(addr));
        assert!(outgoing.check_send().expect("check-send") > 0);
        keep.push((
            incoming.subscribe(),
            outgoing.subscribe(),
            incoming,
            outgoing,
            socket,
        ));
    }
    let half_bound = create_udp_socket(IpAddressFamily::Ipv6).expect("socket");
    half_bound
        .start_bind(&network(), loopback(IpAddressFamily::Ipv6, 0))
        .expect("start-bind");
    println!("trapping");
    std::hint::black_box((&keep, &half_bound));
    panic!("trap with everything open");
}
