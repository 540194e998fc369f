//! send to an address of the other family is invalid-argument ("The remote-address has the wrong address family").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let other = match family {
            IpAddressFamily::Ipv4 => IpAddressFamily::Ipv6,
            IpAddressFamily::Ipv6 => IpAddressFamily::Ipv4,
        };
        let (socket, _) = bound_socket(family);
        let (_, peer) = bound_socket(other);
        let (_incoming, outgoing) = socket.stream(None).expect("stream");
        assert!(outgoing.check_send().expect("check-send") >= 1);
        let datagram = OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(peer),
        };
        expect_error(outgoing.send(&[datagram]), ErrorCode::InvalidArgument);
    }
}
