//! Bindgen trait impls, one file per WIT interface. They convert arguments,
//! look resources up in the table and hand plain Rust calls to
//! [`crate::socket`] and [`crate::streams`].

mod ip_name_lookup;
mod udp;
mod udp_create_socket;
mod udp_extensions;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::backend::Family;
use crate::bindings::ErrorCode;
use crate::bindings::{
    IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    wasi::sockets::network,
};
use crate::ctx::UdpCtxView;
use crate::error::SocketError;

impl UdpCtxView<'_> {
    /// Runs `operation` on the socket `this`, counting an error it returns
    /// against the socket: the shape of every option getter and setter.
    fn on_socket<T>(
        &mut self,
        this: &wasmtime::component::Resource<crate::socket::UdpSocket>,
        operation: impl FnOnce(&crate::socket::UdpSocket) -> crate::error::UdpResult<T>,
    ) -> crate::error::SocketResult<T> {
        let socket = self.table.get(this)?;
        Ok(operation(socket).map_err(|e| socket.note(e))?)
    }
}

impl network::Host for UdpCtxView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        match error {
            SocketError::Code(code) => Ok(code),
            SocketError::Trap(trap) => Err(trap),
        }
    }
}

// Required by bindgen for the `network` resource, which wasmtime-wasi's
// linker provides; this crate never adds the `network` interface itself.
impl network::HostNetwork for UdpCtxView<'_> {
    fn drop(
        &mut self,
        network: wasmtime::component::Resource<wasmtime_wasi::p2::Network>,
    ) -> wasmtime::Result<()> {
        self.table.delete(network)?;
        Ok(())
    }
}

pub(crate) fn to_std(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (a, b, c, d),
        }) => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)),
        IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port,
            flow_info,
            address: (a, b, c, d, e, f, g, h),
            scope_id,
        }) => SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            port,
            flow_info,
            scope_id,
        )),
    }
}

pub(crate) fn to_wit(addr: SocketAddr) -> IpSocketAddress {
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

pub(crate) fn ip_to_wit(ip: std::net::IpAddr) -> IpAddress {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

pub(crate) fn family_from_wit(family: IpAddressFamily) -> Family {
    match family {
        IpAddressFamily::Ipv4 => Family::Ipv4,
        IpAddressFamily::Ipv6 => Family::Ipv6,
    }
}

pub(crate) fn family_to_wit(family: Family) -> IpAddressFamily {
    match family {
        Family::Ipv4 => IpAddressFamily::Ipv4,
        Family::Ipv6 => IpAddressFamily::Ipv6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_with_flow_info_and_scope() {
        for addr in ["127.0.0.1:53", "[::1]:9", "[fe80::1%7]:443"] {
            let std: SocketAddr = addr.parse().expect("addr");
            assert_eq!(to_std(to_wit(std)), std);
        }
        let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0xabcde, 3));
        assert_eq!(to_std(to_wit(v6)), v6);
    }
}
