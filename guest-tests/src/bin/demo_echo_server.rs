//! Demo: an echo server. Binds loopback on a port the system picks, says
//! where it listens, echoes COUNT datagrams (first argument, default 3) back
//! to their senders, and exits.
use guest_tests::*;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("COUNT must be a number"))
        .unwrap_or(3);
    let (socket, addr) = bound_socket(IpAddressFamily::Ipv4);
    let IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port,
        address: (a, b, c, d),
    }) = addr
    else {
        unreachable!("an IPv4 socket")
    };
    println!("listening on {a}.{b}.{c}.{d}:{port}");
    let (incoming, outgoing) = socket.stream(None).expect("stream");
    let pollable = incoming.subscribe();
    let mut echoed = 0;
    while echoed < count {
        let batch = incoming.receive(16).expect("receive");
        if batch.is_empty() {
            // Waits as long as it takes: the demo host ends the run if the
            // client never comes.
            pollable.block();
            continue;
        }
        for datagram in batch {
            println!(
                "echoing {:?} ({} bytes) to port {}",
                String::from_utf8_lossy(&datagram.data),
                datagram.data.len(),
                port_of(&datagram.remote_address)
            );
            send_one(&outgoing, &datagram.data, Some(datagram.remote_address));
            echoed += 1;
        }
    }
    println!("echoed {echoed} datagrams, bye");
}

fn port_of(addr: &IpSocketAddress) -> u16 {
    guest_tests::port(addr)
}
