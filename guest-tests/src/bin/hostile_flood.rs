//! Hostile: floods the largest IPv4 datagrams at a socket that never reads
//! and at a connected peer, as fast as check-send allows, for ROUNDS rounds
//! (0: until the host stops the guest). Nothing may pile up on the host: the
//! kernel drops what the receivers cannot hold. Prints `flooded N`.
use guest_tests::*;

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("argument: ROUNDS");
    let (_sink, sink_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (peer, peer_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (_peer_in, _peer_out) = peer.stream(None).expect("stream peer");
    let (unconnected, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, to_anyone) = unconnected.stream(None).expect("stream");
    let (connected, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_connected_in, to_peer) = connected.stream(Some(peer_addr)).expect("stream");
    let largest = |to| OutgoingDatagram {
        data: vec![0xee; 65_507],
        remote_address: to,
    };
    let to_sink: Vec<OutgoingDatagram> = (0..64).map(|_| largest(Some(sink_addr))).collect();
    let to_connected: Vec<OutgoingDatagram> = (0..64).map(|_| largest(None)).collect();
    let mut flooded = 0;
    let mut round = 0;
    while rounds == 0 || round < rounds {
        round += 1;
        for (stream, batch) in [(&to_anyone, &to_sink), (&to_peer, &to_connected)] {
            let permitted = stream.check_send().expect("check-send") as usize;
            if permitted > 0 {
                flooded += stream.send(&batch[..permitted.min(64)]).expect("send");
            }
        }
    }
    println!("flooded {flooded}");
}
