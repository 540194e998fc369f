//! IPv6 socket addresses round-trip: local-address of a socket bound to
//! [::1] has scope-id 0, and a datagram's remote-address is exactly the
//! sender's local-address, flow-info included.
use guest_tests::*;

fn main() {
    let (rx, rx_addr) = bound_socket(IpAddressFamily::Ipv6);
    let (tx, tx_addr) = bound_socket(IpAddressFamily::Ipv6);
    let IpSocketAddress::Ipv6(local) = tx_addr else {
        panic!("an IPv6 address")
    };
    assert_eq!(local.scope_id, 0);
    assert_eq!(local.address, (0, 0, 0, 0, 0, 0, 0, 1));
    let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
    let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");
    send_one(&tx_out, b"v6", Some(rx_addr));
    let got = receive_exactly(&rx_in, 1);
    let IpSocketAddress::Ipv6(source) = got[0].remote_address else {
        panic!("an IPv6 source")
    };
    assert_eq!(source.address, local.address);
    assert_eq!(source.port, local.port);
    assert_eq!(source.scope_id, 0);
    assert_eq!(source.flow_info, 0);
}
