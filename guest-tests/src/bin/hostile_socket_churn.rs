//! Hostile: CYCLES rounds of create, bind, stream, subscribe and drop, in
//! one of four drop orders each round, then creating past the socket limit
//! until refused. Every descriptor must come back. Prints `cycles N`.
use guest_tests::*;

fn main() {
    let cycles: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("argument: CYCLES");
    for cycle in 0..cycles {
        let family = if cycle % 3 == 0 {
            IpAddressFamily::Ipv6
        } else {
            IpAddressFamily::Ipv4
        };
        let socket = socket(family);
        if cycle % 5 == 0 {
            // Dropped unbound.
            continue;
        }
        bind(&socket, loopback(family, 0)).expect("bind");
        let (incoming, outgoing) = socket.stream(None).expect("stream");
        let pollables = (
            incoming.subscribe(),
            outgoing.subscribe(),
            socket.subscribe(),
        );
        match cycle % 4 {
            0 => drop((pollables, incoming, outgoing, socket)),
            1 => drop((socket, incoming, outgoing, pollables)),
            2 => drop((outgoing, socket, pollables, incoming)),
            _ => drop((incoming, pollables, socket, outgoing)),
        }
    }
    let mut held = Vec::new();
    while let Ok(socket) = create_udp_socket(IpAddressFamily::Ipv4) {
        held.push(socket);
        assert!(held.len() <= 100_000, "no socket limit");
    }
    println!("cycles {cycles} then {} sockets held", held.len());
}
