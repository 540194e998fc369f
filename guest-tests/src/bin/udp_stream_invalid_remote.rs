//! stream(some(addr)) with an unspecified address, port 0, the wrong family
//! or an IPv4-mapped IPv6 address is invalid-argument, and changes nothing.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let other = match family {
            IpAddressFamily::Ipv4 => IpAddressFamily::Ipv6,
            IpAddressFamily::Ipv6 => IpAddressFamily::Ipv4,
        };
        let mut invalid = vec![
            unspecified(family, 53),
            loopback(family, 0),
            loopback(other, 53),
        ];
        if family == IpAddressFamily::Ipv6 {
            invalid.push(ipv4_mapped_loopback(53));
        }
        for remote in invalid {
            expect_error(
                socket.stream(Some(remote)).map(|_| ()),
                ErrorCode::InvalidArgument,
            );
            expect_error(socket.remote_address(), ErrorCode::InvalidState);
        }
        let streams = socket
            .stream(Some(loopback(family, 53)))
            .expect("valid remote");
        drop(streams);
    }
}
