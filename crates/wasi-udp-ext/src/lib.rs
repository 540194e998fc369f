//! The guest side of `wasi-udp:extensions/udp-extensions@0.1.0`:
//! multicast groups, broadcast and shared ports for the sockets of
//! `wasi:sockets/udp@0.2.1`, on hosts that provide them (`wasi-udp` does,
//! under its policy; a host without them cannot instantiate a component
//! that uses this crate).
//!
//! The crate carries its own bindings of `wasi:sockets@0.2.1` (re-exported
//! as [`wasi`]), so that the sockets it takes are the ones the guest makes:
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use wasi_udp_ext::wasi::sockets::{instance_network, network, udp_create_socket};
//!
//! let network = instance_network::instance_network();
//! let socket = udp_create_socket::create_udp_socket(network::IpAddressFamily::Ipv4)?;
//! wasi_udp_ext::set_shared_port(&socket, true)?;
//! wasi_udp_ext::join_multicast_v4(&socket, Ipv4Addr::new(224, 0, 0, 251), 0)?;
//! # Ok::<(), network::ErrorCode>(())
//! ```
//!
//! [`Datagrams`] adds blocking sends and receives with timeouts, which is
//! what most small programs want.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

wit_bindgen::generate!({
    path: "../../wit",
    world: "wasi-udp:provider/extensions-guest",
    generate_all,
});

pub use wasi_udp::extensions::udp_extensions as raw;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::poll;
use wasi::sockets::network::{
    ErrorCode, IpAddress, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::udp::{
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};

/// `ip` as the WIT writes it.
pub fn ip_address(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

/// `addr` as the WIT writes it.
pub fn socket_address(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

/// A WIT socket address as std's.
pub fn std_socket_address(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), v4.port).into()
        }
        IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddrV6::new(
                Ipv6Addr::new(a, b, c, d, e, f, g, h),
                v6.port,
                v6.flow_info,
                v6.scope_id,
            )
            .into()
        }
    }
}

/// Joins the IPv4 multicast `group` on interface `interface` (0: by route).
///
/// # Errors
/// See the WIT: `access-denied` when the host's policy has no `join` rule
/// for the group, `invalid-argument` for a non-multicast group or an
/// unknown interface, `invalid-state` when already joined.
pub fn join_multicast_v4(
    socket: &UdpSocket,
    group: Ipv4Addr,
    interface: u32,
) -> Result<(), ErrorCode> {
    raw::join_multicast_group(socket, ip_address(group.into()), interface)
}

/// Joins the IPv6 multicast `group` on interface `interface` (0: by route).
///
/// # Errors
/// As [`join_multicast_v4`].
pub fn join_multicast_v6(
    socket: &UdpSocket,
    group: Ipv6Addr,
    interface: u32,
) -> Result<(), ErrorCode> {
    raw::join_multicast_group(socket, ip_address(group.into()), interface)
}

/// Leaves a group joined with [`join_multicast_v4`] or
/// [`join_multicast_v6`].
///
/// # Errors
/// `invalid-state` when the socket is not in the group.
pub fn leave_multicast(socket: &UdpSocket, group: IpAddr, interface: u32) -> Result<(), ErrorCode> {
    raw::leave_multicast_group(socket, ip_address(group), interface)
}

/// Joins `group` for datagrams from `source` only.
///
/// # Errors
/// As [`join_multicast_v4`]; `not-supported` where the host cannot.
pub fn join_source_specific(
    socket: &UdpSocket,
    group: IpAddr,
    source: IpAddr,
    interface: u32,
) -> Result<(), ErrorCode> {
    raw::join_source_specific_group(socket, ip_address(group), ip_address(source), interface)
}

/// Sets the hop limit of datagrams sent to groups (starts at 1).
///
/// # Errors
/// As the host's socket options.
pub fn set_multicast_hop_limit(socket: &UdpSocket, hops: u8) -> Result<(), ErrorCode> {
    raw::set_multicast_hop_limit(socket, hops)
}

/// Sets whether this host's members of a group hear what the socket sends
/// to it (starts on).
///
/// # Errors
/// As the host's socket options.
pub fn set_multicast_loopback(socket: &UdpSocket, enabled: bool) -> Result<(), ErrorCode> {
    raw::set_multicast_loopback(socket, enabled)
}

/// Sends datagrams to groups out of interface `interface` (0: by route).
///
/// # Errors
/// `invalid-argument` for an unknown interface.
pub fn set_multicast_interface(socket: &UdpSocket, interface: u32) -> Result<(), ErrorCode> {
    raw::set_multicast_interface(socket, interface)
}

/// Lets the socket send to broadcast addresses (each send still needs the
/// host's `broadcast` and `send` rules).
///
/// # Errors
/// As the host's socket options.
pub fn set_broadcast(socket: &UdpSocket, enabled: bool) -> Result<(), ErrorCode> {
    raw::set_broadcast(socket, enabled)
}

/// Shares the socket's port with other sockets that share it; only before
/// the socket is bound.
///
/// # Errors
/// `invalid-state` once bound.
pub fn set_shared_port(socket: &UdpSocket, enabled: bool) -> Result<(), ErrorCode> {
    raw::set_shared_port(socket, enabled)
}

/// A bound socket with its streams, sending and receiving one datagram at a
/// time and waiting at most a given time.
#[derive(Debug)]
pub struct Datagrams {
    /// The socket.
    pub socket: UdpSocket,
    incoming: IncomingDatagramStream,
    outgoing: OutgoingDatagramStream,
}

impl Datagrams {
    /// Binds `socket` to `local` (waiting for the bind to finish) and opens
    /// its unconnected streams.
    ///
    /// # Errors
    /// What `start-bind`, `finish-bind` or `stream` returned.
    pub fn bind(socket: UdpSocket, local: SocketAddr) -> Result<Self, ErrorCode> {
        let network = wasi::sockets::instance_network::instance_network();
        socket.start_bind(&network, socket_address(local))?;
        let pollable = socket.subscribe();
        loop {
            match socket.finish_bind() {
                Err(ErrorCode::WouldBlock) => pollable.block(),
                other => break other?,
            }
        }
        drop(pollable);
        let (incoming, outgoing) = socket.stream(None)?;
        Ok(Self {
            socket,
            incoming,
            outgoing,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// What `local-address` returned.
    pub fn local_address(&self) -> Result<SocketAddr, ErrorCode> {
        self.socket.local_address().map(std_socket_address)
    }

    /// Sends `payload` to `destination`, waiting for room.
    ///
    /// # Errors
    /// What `check-send` or `send` returned (`access-denied` when the
    /// host's policy refuses the destination).
    pub fn send_to(&self, payload: &[u8], destination: SocketAddr) -> Result<(), ErrorCode> {
        let pollable = self.outgoing.subscribe();
        loop {
            if self.outgoing.check_send()? == 0 {
                pollable.block();
                continue;
            }
            let sent = self.outgoing.send(&[OutgoingDatagram {
                data: payload.to_vec(),
                remote_address: Some(socket_address(destination)),
            }])?;
            if sent == 1 {
                return Ok(());
            }
        }
    }

    /// The next datagram and its sender, or `None` if none comes within
    /// `within`.
    ///
    /// # Errors
    /// What `receive` returned.
    pub fn receive(&self, within: Duration) -> Result<Option<(Vec<u8>, SocketAddr)>, ErrorCode> {
        let deadline = monotonic_clock::now().saturating_add(within.as_nanos() as u64);
        let readable = self.incoming.subscribe();
        loop {
            if let Some(datagram) = self.incoming.receive(1)?.pop() {
                return Ok(Some((
                    datagram.data,
                    std_socket_address(datagram.remote_address),
                )));
            }
            let now = monotonic_clock::now();
            if now >= deadline {
                return Ok(None);
            }
            let timeout = monotonic_clock::subscribe_duration(deadline - now);
            poll(&[&readable, &timeout]);
        }
    }
}
