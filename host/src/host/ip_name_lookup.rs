//! `wasi:sockets/ip-name-lookup`.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::Network;
use wasmtime_wasi_io::poll::{DynPollable, subscribe};

use crate::bindings::IpAddress;
use crate::bindings::wasi::sockets::ip_name_lookup::{Host, HostResolveAddressStream};
use crate::ctx::UdpCtxView;
use crate::error::SocketResult;
use crate::lookup::ResolveAddressStream;

impl Host for UdpCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        self.table.get(&network)?;
        let stream = self.ctx.resolve(&name)?;
        Ok(self.table.push(stream)?)
    }
}

impl HostResolveAddressStream for UdpCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        let next = self.table.get_mut(&this)?.next_address()?;
        Ok(next.map(super::ip_to_wit))
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
