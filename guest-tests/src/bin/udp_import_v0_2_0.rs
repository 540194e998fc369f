//! A guest importing wasi:sockets/udp@0.2.0 (the `wasi` crate 0.12) reaches
//! the provider: the host test checks the provider counted its socket.
use wasi_0_2_0::io::poll::poll;
use wasi_0_2_0::sockets::instance_network::instance_network;
use wasi_0_2_0::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi_0_2_0::sockets::udp::OutgoingDatagram;
use wasi_0_2_0::sockets::udp_create_socket::create_udp_socket;

fn main() {
    let socket = create_udp_socket(IpAddressFamily::Ipv4).expect("create");
    let any_port = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (127, 0, 0, 1),
    });
    socket
        .start_bind(&instance_network(), any_port)
        .expect("start-bind");
    socket.finish_bind().expect("finish-bind");
    let addr = socket.local_address().expect("local-address");
    let (incoming, outgoing) = socket.stream(None).expect("stream");
    assert!(outgoing.check_send().expect("check-send") >= 1);
    let datagram = OutgoingDatagram {
        data: b"0.2.0".to_vec(),
        remote_address: Some(addr),
    };
    assert_eq!(outgoing.send(&[datagram]).expect("send"), 1);
    let pollable = incoming.subscribe();
    let timeout = wasi_0_2_0::clocks::monotonic_clock::subscribe_duration(5_000_000_000);
    for _ in 0..100 {
        let got = incoming.receive(1).expect("receive");
        if let Some(datagram) = got.first() {
            assert_eq!(datagram.data, b"0.2.0");
            return;
        }
        assert!(poll(&[&pollable, &timeout]).contains(&0), "timed out");
    }
    panic!("no datagram");
}
