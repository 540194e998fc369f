//! A guest importing wasi:sockets/udp@0.2.12 (the `wasip2` crate) reaches
//! the provider: the host test checks the provider counted its socket.
use wasip2::io::poll::poll;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::udp::OutgoingDatagram;
use wasip2::sockets::udp_create_socket::create_udp_socket;

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
        data: b"0.2.12".to_vec(),
        remote_address: Some(addr),
    };
    assert_eq!(outgoing.send(&[datagram]).expect("send"), 1);
    let pollable = incoming.subscribe();
    let timeout = wasip2::clocks::monotonic_clock::subscribe_duration(5_000_000_000);
    for _ in 0..100 {
        let got = incoming.receive(1).expect("receive");
        if let Some(datagram) = got.first() {
            assert_eq!(datagram.data, b"0.2.12");
            return;
        }
        assert!(poll(&[&pollable, &timeout]).contains(&0), "timed out");
    }
    panic!("no datagram");
}
