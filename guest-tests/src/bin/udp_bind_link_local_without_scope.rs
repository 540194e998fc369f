//! Binding a link-local IPv6 address without a scope id is an invalid
//! address (the kernel cannot tell which link is meant: EINVAL), so
//! `invalid-argument`, not `invalid-state` ("already bound", which the
//! socket is not). The host must allow binding fe80::53 for the kernel to
//! be asked at all.
use guest_tests::*;

fn main() {
    let socket = socket(IpAddressFamily::Ipv6);
    let link_local = IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port: 0,
        flow_info: 0,
        address: (0xfe80, 0, 0, 0, 0, 0, 0, 0x53),
        scope_id: 0,
    });
    expect_error(
        socket.start_bind(&network(), link_local),
        ErrorCode::InvalidArgument,
    );
    // The socket is still unbound and usable.
    bind(&socket, loopback(IpAddressFamily::Ipv6, 0)).expect("bind to ::1 afterwards");
}
