//! `wasi:sockets/udp-create-socket`.

use wasmtime::component::Resource;

use crate::bindings::wasi::sockets::udp_create_socket::Host;
use crate::bindings::{ErrorCode, IpAddressFamily};
use crate::ctx::{SocketSlot, UdpCtxView, UdpStats};
use crate::error::{Operation, SocketResult, error_code_from_io};
use crate::socket::UdpSocket;

impl Host for UdpCtxView<'_> {
    fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        // udp-create-socket.wit: "new-socket-limit: The new socket resource
        // could not be created because of a system limit." The per-store
        // limit is checked before the syscall.
        let slot = SocketSlot::claim(&self.ctx.live_sockets, self.ctx.shared.limits.max_sockets)
            .ok_or(ErrorCode::NewSocketLimit)?;
        let socket = UdpSocket::new(
            super::family_from_wit(address_family),
            self.ctx.shared.clone(),
            slot,
        )
        .map_err(|e| error_code_from_io(&e, Operation::Create))?;
        let socket = self.table.push(socket)?;
        UdpStats::add(&self.ctx.shared.stats.sockets_created, 1);
        Ok(socket)
    }
}
