//! start-bind with the wrong family (including IPv4-mapped IPv6) is
//! invalid-argument, and leaves the socket bindable.
use guest_tests::*;

fn main() {
    let v4 = socket(IpAddressFamily::Ipv4);
    expect_error(
        v4.start_bind(&network(), loopback(IpAddressFamily::Ipv6, 0)),
        ErrorCode::InvalidArgument,
    );
    bind(&v4, loopback(IpAddressFamily::Ipv4, 0)).expect("still bindable");

    let v6 = socket(IpAddressFamily::Ipv6);
    expect_error(
        v6.start_bind(&network(), loopback(IpAddressFamily::Ipv4, 0)),
        ErrorCode::InvalidArgument,
    );
    expect_error(
        v6.start_bind(&network(), ipv4_mapped_loopback(0)),
        ErrorCode::InvalidArgument,
    );
    bind(&v6, loopback(IpAddressFamily::Ipv6, 0)).expect("still bindable");
}
