//! send from an IPv6 socket to an IPv4-mapped address (::ffff:127.0.0.1) is
//! invalid-argument: IPv6 sockets are V6ONLY ("On IPv6 sockets, IPV6_V6ONLY is
//! enabled by default and can't be configured otherwise").
use guest_tests::*;

fn main() {
    let (socket, _) = bound_socket(IpAddressFamily::Ipv6);
    let (_, v4_peer) = bound_socket(IpAddressFamily::Ipv4);
    let (_incoming, outgoing) = socket.stream(None).expect("stream");
    assert!(outgoing.check_send().expect("check-send") >= 1);
    let datagram = OutgoingDatagram {
        data: b"x".to_vec(),
        remote_address: Some(ipv4_mapped_loopback(port(&v4_peer))),
    };
    expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
}
