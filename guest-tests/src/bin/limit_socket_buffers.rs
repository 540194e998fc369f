//! Host limits on socket buffers (the host allows 64 KiB per buffer and
//! BUDGET bytes of kernel buffer memory per store, given as the argument):
//! a huge request is capped and reads back as the cap; sockets are made
//! until the budget has no room, later ones with smaller buffers than the
//! system's; all of them together never hold more than the budget; with
//! nothing left, asking for more leaves a buffer as it was; a dropped
//! socket gives its share back. The WIT allows any cap: "it might be
//! silently clamped". (Linux accounts each buffer at twice the size set,
//! which is what the budget counts.)
use guest_tests::*;

fn charge(socket: &UdpSocket) -> u64 {
    2 * (socket.receive_buffer_size().expect("receive-buffer-size")
        + socket.send_buffer_size().expect("send-buffer-size"))
}

fn main() {
    let budget: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: limit_socket_buffers BUDGET");
    let (first, _) = bound_socket(IpAddressFamily::Ipv4);
    first
        .set_receive_buffer_size(1 << 30)
        .expect("a huge size is capped, not refused");
    assert_eq!(first.receive_buffer_size().expect("size"), 64 * 1024);

    let mut sockets = vec![first];
    loop {
        match create_udp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => {
                bind(&socket, loopback(IpAddressFamily::Ipv4, 0)).expect("bind");
                sockets.push(socket);
            }
            Err(ErrorCode::NewSocketLimit) => break,
            Err(other) => panic!("create-udp-socket: {other:?}"),
        }
        assert!(sockets.len() < 10_000, "the budget never ran out");
    }
    let charges: Vec<u64> = sockets.iter().map(charge).collect();
    let total: u64 = charges.iter().sum();
    println!(
        "{} sockets, charged {charges:?}, {total} of {budget}",
        sockets.len()
    );
    assert!(total <= budget, "{total} > {budget}");
    assert!(sockets.len() >= 3, "{charges:?}");
    let last = sockets.last().expect("a socket");
    assert!(
        charge(last) < charges[1],
        "the last socket has smaller buffers than the system's: {charges:?}"
    );

    // Nothing left: a bigger buffer is refused quietly, the size stays.
    let before = last.receive_buffer_size().expect("size");
    last.set_receive_buffer_size(64 * 1024)
        .expect("capped, not refused");
    assert_eq!(last.receive_buffer_size().expect("size"), before);

    // A dropped socket's share comes back.
    drop(sockets.remove(1));
    let fresh = create_udp_socket(IpAddressFamily::Ipv4).expect("room again");
    assert!(charge(&fresh) <= budget - (total - charges[1]));
}
