//! Binding an address no interface has (TEST-NET-1, 192.0.2.1; nothing is
//! sent) is address-not-bindable.
use guest_tests::*;

fn main() {
    let socket = socket(IpAddressFamily::Ipv4);
    let foreign = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (192, 0, 2, 1),
    });
    expect_error(
        socket.start_bind(&network(), foreign),
        ErrorCode::AddressNotBindable,
    );
    bind(&socket, loopback(IpAddressFamily::Ipv4, 0)).expect("still bindable");
}
