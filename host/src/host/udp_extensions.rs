//! `wasi-udp:extensions/udp-extensions`: multicast, broadcast and shared
//! ports on `wasi:sockets/udp@0.2.1` sockets.

use std::net::IpAddr;

use wasmtime::component::Resource;

use crate::backend::Membership;
use crate::bindings::IpAddress;
use crate::bindings::wasi_udp::extensions::udp_extensions::Host;
use crate::ctx::UdpCtxView;
use crate::error::SocketResult;
use crate::socket::UdpSocket;

fn membership(group: IpAddress, source: Option<IpAddress>, interface: u32) -> Membership {
    Membership {
        group: ip_from_wit(group),
        source: source.map(ip_from_wit),
        interface,
    }
}

fn ip_from_wit(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

impl UdpCtxView<'_> {
    async fn join(
        &mut self,
        this: &Resource<UdpSocket>,
        membership: Membership,
    ) -> SocketResult<()> {
        let socket = self.table.get(this)?;
        let question = socket
            .prepare_join(membership)
            .map_err(|e| socket.note(e))?;
        let approved = question.approve().await;
        let socket = self.table.get(this)?;
        Ok(approved
            .and_then(|approved| socket.join(approved))
            .map_err(|e| socket.note(e))?)
    }

    fn leave(&mut self, this: &Resource<UdpSocket>, membership: Membership) -> SocketResult<()> {
        self.on_socket(this, |socket| socket.leave(membership))
    }
}

impl Host for UdpCtxView<'_> {
    async fn join_multicast_group(
        &mut self,
        socket: Resource<UdpSocket>,
        group: IpAddress,
        interface_index: u32,
    ) -> SocketResult<()> {
        let membership = membership(group, None, interface_index);
        self.join(&socket, membership).await
    }

    fn leave_multicast_group(
        &mut self,
        socket: Resource<UdpSocket>,
        group: IpAddress,
        interface_index: u32,
    ) -> SocketResult<()> {
        let membership = membership(group, None, interface_index);
        self.leave(&socket, membership)
    }

    async fn join_source_specific_group(
        &mut self,
        socket: Resource<UdpSocket>,
        group: IpAddress,
        source: IpAddress,
        interface_index: u32,
    ) -> SocketResult<()> {
        let membership = membership(group, Some(source), interface_index);
        self.join(&socket, membership).await
    }

    fn leave_source_specific_group(
        &mut self,
        socket: Resource<UdpSocket>,
        group: IpAddress,
        source: IpAddress,
        interface_index: u32,
    ) -> SocketResult<()> {
        let membership = membership(group, Some(source), interface_index);
        self.leave(&socket, membership)
    }

    fn multicast_hop_limit(&mut self, socket: Resource<UdpSocket>) -> SocketResult<u8> {
        self.on_socket(&socket, UdpSocket::multicast_hop_limit)
    }

    fn set_multicast_hop_limit(
        &mut self,
        socket: Resource<UdpSocket>,
        value: u8,
    ) -> SocketResult<()> {
        self.on_socket(&socket, |socket| socket.set_multicast_hop_limit(value))
    }

    fn multicast_loopback(&mut self, socket: Resource<UdpSocket>) -> SocketResult<bool> {
        self.on_socket(&socket, UdpSocket::multicast_loopback)
    }

    fn set_multicast_loopback(
        &mut self,
        socket: Resource<UdpSocket>,
        enabled: bool,
    ) -> SocketResult<()> {
        self.on_socket(&socket, |socket| socket.set_multicast_loopback(enabled))
    }

    fn set_multicast_interface(
        &mut self,
        socket: Resource<UdpSocket>,
        interface_index: u32,
    ) -> SocketResult<()> {
        self.on_socket(&socket, |socket| {
            socket.set_multicast_interface(interface_index)
        })
    }

    fn broadcast(&mut self, socket: Resource<UdpSocket>) -> SocketResult<bool> {
        self.on_socket(&socket, UdpSocket::broadcast)
    }

    fn set_broadcast(&mut self, socket: Resource<UdpSocket>, enabled: bool) -> SocketResult<()> {
        self.on_socket(&socket, |socket| socket.set_broadcast(enabled))
    }

    fn shared_port(&mut self, socket: Resource<UdpSocket>) -> SocketResult<bool> {
        Ok(self.table.get(&socket)?.shared_port())
    }

    fn set_shared_port(&mut self, socket: Resource<UdpSocket>, enabled: bool) -> SocketResult<()> {
        let socket = self.table.get_mut(&socket)?;
        Ok(socket
            .set_shared_port(enabled)
            .map_err(|e| socket.note(e))?)
    }
}
