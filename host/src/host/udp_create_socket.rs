//! `wasi:sockets/udp-create-socket`.

use wasmtime::component::Resource;

use crate::bindings::IpAddressFamily;
use crate::bindings::wasi::sockets::udp_create_socket::Host;
use crate::ctx::{UdpCtxView, UdpStats};
use crate::error::SocketResult;
use crate::socket::UdpSocket;

impl Host for UdpCtxView<'_> {
    fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        let socket = UdpSocket::create(
            super::family_from_wit(address_family),
            &self.ctx.shared,
            &self.ctx.live_sockets,
        )?;
        let socket = self.table.push(socket)?;
        self.table.get(&socket)?.set_handle(socket.rep());
        UdpStats::add(&self.ctx.shared.stats.sockets_created, 1);
        Ok(socket)
    }
}
