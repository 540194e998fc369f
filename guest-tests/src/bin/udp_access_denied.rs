//! What the host's policy refuses is access-denied, checked before anything
//! reaches the network: binding, connecting and sending to TEST-NET-1
//! (192.0.2.0/24) under a loopback-only policy.
use guest_tests::*;

fn main() {
    let test_net = |port| {
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (192, 0, 2, 7),
        })
    };
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    expect_error(
        socket.stream(Some(test_net(53))).map(|_| ()),
        ErrorCode::AccessDenied,
    );
    let (_incoming, outgoing) = socket.stream(None).expect("stream");
    assert!(outgoing.check_send().expect("check-send") >= 1);
    let datagram = OutgoingDatagram {
        data: b"q".to_vec(),
        remote_address: Some(test_net(53)),
    };
    expect_error(outgoing.send(&[datagram]), ErrorCode::AccessDenied);

    // The test host allows binding there (to reach address-not-bindable);
    // a second address family shows bind checks too: nothing allows
    // binding fe80::1.
    let v6 = socket_v6();
    let link_local = IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port: 0,
        flow_info: 0,
        address: (0xfe80, 0, 0, 0, 0, 0, 0, 1),
        scope_id: 0,
    });
    expect_error(
        v6.start_bind(&network(), link_local),
        ErrorCode::AccessDenied,
    );
}

fn socket_v6() -> UdpSocket {
    socket(IpAddressFamily::Ipv6)
}
