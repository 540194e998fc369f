//! A connected IPv6 stream is the same peer whatever flow label the guest
//! passed: a datagram from the peer arrives (the kernel reports it with
//! flow-info 0), and a send to the peer's address with another flow label
//! goes to the peer rather than failing as "another address". The WIT's
//! guarantee is about the peer ("guaranteed to match the remote address the
//! stream was initialized with"), and the flow label names no peer.
use guest_tests::*;

fn with_flow(addr: IpSocketAddress, flow_info: u32) -> IpSocketAddress {
    match addr {
        IpSocketAddress::Ipv6(v6) => IpSocketAddress::Ipv6(Ipv6SocketAddress { flow_info, ..v6 }),
        other => other,
    }
}

fn main() {
    let (a, a_addr) = bound_socket(IpAddressFamily::Ipv6);
    let (b, b_addr) = bound_socket(IpAddressFamily::Ipv6);
    let (a_in, a_out) = a
        .stream(Some(with_flow(b_addr, 0x12345)))
        .expect("connect with a flow label");
    let (b_in, b_out) = b.stream(None).expect("stream b");

    send_one(&b_out, b"to a", Some(a_addr));
    let got = receive_exactly(&a_in, 1);
    assert_eq!(got[0].data, b"to a", "the peer's datagram must arrive");
    assert!(same(&got[0].remote_address, &b_addr));

    // The peer's address with a different flow label is still the peer.
    send_one(&a_out, b"flow label 7", Some(with_flow(b_addr, 7)));
    send_one(&a_out, b"no flow label", Some(b_addr));
    let got = receive_exactly(&b_in, 2);
    assert_eq!(got[0].data, b"flow label 7");
    assert_eq!(got[1].data, b"no flow label");
    assert!(same(&got[0].remote_address, &a_addr));
}
