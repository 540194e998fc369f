//! `wasi-udp:extensions`: the multicast options read back as set, each
//! documented error code, and each refusal by the host's policy.
//!
//! Then an IPv6 group, joined on the interface given as the first argument
//! (default 0), hears a datagram sent to it.
//!
//! The host must grant `join` on `239.255.0.0/16` and `ff12::/16` only,
//! `send` to `224.0.0.251:5353`, to `255.255.255.255:9` (but not `join` or
//! `broadcast` for them) and to `[ff12::1:3]:47002`, `receive` from the
//! IPv6 sender, and no `share`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasi_udp_ext::Datagrams;
use wasi_udp_ext::wasi::sockets::instance_network::instance_network;
use wasi_udp_ext::wasi::sockets::network::{ErrorCode, IpAddressFamily};
use wasi_udp_ext::wasi::sockets::udp_create_socket::create_udp_socket;
use wasi_udp_ext::{raw, socket_address};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 0, 1);

fn main() {
    let socket = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");

    // Options start where the WIT says and read back as set.
    assert_eq!(raw::multicast_hop_limit(&socket), Ok(1));
    raw::set_multicast_hop_limit(&socket, 0).expect("hop limit 0 keeps datagrams on the host");
    assert_eq!(raw::multicast_hop_limit(&socket), Ok(0));
    raw::set_multicast_hop_limit(&socket, 5).expect("hop limit 5");
    assert_eq!(raw::multicast_hop_limit(&socket), Ok(5));
    assert_eq!(raw::multicast_loopback(&socket), Ok(true));
    raw::set_multicast_loopback(&socket, false).expect("loopback off");
    assert_eq!(raw::multicast_loopback(&socket), Ok(false));
    assert_eq!(raw::broadcast(&socket), Ok(false));
    assert_eq!(raw::shared_port(&socket), Ok(false));
    raw::set_multicast_interface(&socket, 0).expect("interface 0: by route");
    assert_eq!(
        raw::set_multicast_interface(&socket, 999_999),
        Err(ErrorCode::InvalidArgument),
        "an interface the host does not have"
    );

    // Groups: arguments, then state.
    let v6_group = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb));
    assert_eq!(
        raw::join_multicast_group(&socket, wasi_udp_ext::ip_address(v6_group), 0),
        Err(ErrorCode::InvalidArgument),
        "a group of the other family"
    );
    assert_eq!(
        wasi_udp_ext::join_multicast_v4(&socket, Ipv4Addr::new(10, 0, 0, 1), 0),
        Err(ErrorCode::InvalidArgument),
        "a unicast address is not a group"
    );
    assert_eq!(
        wasi_udp_ext::join_multicast_v4(&socket, GROUP, 999_999),
        Err(ErrorCode::InvalidArgument),
        "an interface the host does not have"
    );
    wasi_udp_ext::join_multicast_v4(&socket, GROUP, 0).expect("join a granted group");
    assert_eq!(
        wasi_udp_ext::join_multicast_v4(&socket, GROUP, 0),
        Err(ErrorCode::InvalidState),
        "joining twice"
    );
    wasi_udp_ext::leave_multicast(&socket, GROUP.into(), 0).expect("leave");
    assert_eq!(
        wasi_udp_ext::leave_multicast(&socket, GROUP.into(), 0),
        Err(ErrorCode::InvalidState),
        "leaving a group the socket is not in"
    );
    let source = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(
        wasi_udp_ext::join_source_specific(&socket, GROUP.into(), GROUP.into(), 0),
        Err(ErrorCode::InvalidArgument),
        "a group is no source"
    );
    wasi_udp_ext::join_source_specific(&socket, Ipv4Addr::new(239, 255, 0, 2).into(), source, 0)
        .expect("join a granted group for one source");

    // Refusals by the policy: each is access-denied.
    assert_eq!(
        wasi_udp_ext::join_multicast_v4(&socket, Ipv4Addr::new(224, 0, 0, 251), 0),
        Err(ErrorCode::AccessDenied),
        "no join rule for 224.0.0.251"
    );
    let datagrams =
        Datagrams::bind(socket, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).expect("bind");
    assert_eq!(
        wasi_udp_ext::set_shared_port(&datagrams.socket, true),
        Err(ErrorCode::InvalidState),
        "sharing the port after binding"
    );
    assert_eq!(
        datagrams.send_to(b"q", SocketAddr::from(([224, 0, 0, 251], 5353))),
        Err(ErrorCode::AccessDenied),
        "a send to a group needs join as well as send"
    );
    wasi_udp_ext::set_broadcast(&datagrams.socket, true).expect("enable broadcast");
    assert_eq!(
        datagrams.send_to(b"b", SocketAddr::from((Ipv4Addr::BROADCAST, 9))),
        Err(ErrorCode::AccessDenied),
        "a broadcast needs broadcast as well as send"
    );
    let sharer = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
    wasi_udp_ext::set_shared_port(&sharer, true).expect("share");
    assert_eq!(
        sharer.start_bind(
            &instance_network(),
            socket_address(SocketAddr::from((Ipv4Addr::LOCALHOST, 47_001)))
        ),
        Err(ErrorCode::AccessDenied),
        "a shared bind needs share as well as bind"
    );

    // IPv6: join a group on the interface, send to it, hear it.
    let interface: u32 = std::env::args()
        .nth(1)
        .map_or(0, |i| i.parse().expect("an interface index"));
    let group = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 1, 3);
    let member = create_udp_socket(IpAddressFamily::Ipv6).expect("socket");
    assert_eq!(raw::multicast_hop_limit(&member), Ok(1));
    assert_eq!(
        wasi_udp_ext::join_multicast_v4(&member, GROUP, 0),
        Err(ErrorCode::InvalidArgument),
        "an IPv4 group on an IPv6 socket"
    );
    let member =
        Datagrams::bind(member, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 47_002))).expect("bind");
    wasi_udp_ext::join_multicast_v6(&member.socket, group, interface).expect("join an IPv6 group");
    let sender = create_udp_socket(IpAddressFamily::Ipv6).expect("socket");
    wasi_udp_ext::set_multicast_interface(&sender, interface).expect("send out of the interface");
    let sender =
        Datagrams::bind(sender, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))).expect("bind");
    let to = SocketAddr::V6(std::net::SocketAddrV6::new(group, 47_002, 0, interface));
    sender.send_to(b"six", to).expect("send to the IPv6 group");
    let (payload, _) = member
        .receive(std::time::Duration::from_secs(5))
        .expect("receive")
        .expect("the IPv6 group's datagram within 5 s");
    assert_eq!(payload, b"six");
    wasi_udp_ext::leave_multicast(&member.socket, group.into(), interface).expect("leave");
    println!("options, errors and refusals as documented");
}
