//! `wasi:sockets/udp`: the three resources.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::Network;
use wasmtime_wasi_io::poll::{DynPollable, subscribe};

use crate::backend::{ReceiveSlots, Transmit};
use crate::bindings::wasi::sockets::udp::{
    Host, HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    OutgoingDatagram,
};
use crate::bindings::{IpAddressFamily, IpSocketAddress};
use crate::ctx::{RECEIVE_SLOTS, UdpCtxView};
use crate::error::SocketResult;
use crate::socket::UdpSocket;
use crate::streams::{AlwaysReady, IncomingDatagramStream, OutgoingDatagramStream};

use super::{family_to_wit, to_std, to_wit};

impl Host for UdpCtxView<'_> {}

impl HostUdpSocket for UdpCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let question = self.table.get(&this)?.prepare_bind(to_std(local_address))?;
        let approved = question.approve_bind().await?;
        Ok(self.table.get_mut(&this)?.start_bind(approved)?)
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> SocketResult<()> {
        Ok(self.table.get_mut(&this)?.finish_bind()?)
    }

    async fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<IncomingDatagramStream>,
        Resource<OutgoingDatagramStream>,
    )> {
        let socket = self.table.get(&this)?;
        let question = socket
            .prepare_stream(remote_address.map(to_std))
            .map_err(|e| socket.note(e))?;
        let approved = match question {
            Some(question) => question.approve_connect().await.map(Some),
            None => Ok(None),
        };
        let socket = self.table.get_mut(&this)?;
        let parts = approved
            .and_then(|approved| socket.stream(approved))
            .map_err(|e| socket.note(e))?;
        // Streams are not table children of the socket: the WIT lets the
        // socket be dropped first, and they keep working until dropped.
        let incoming = self.table.push(IncomingDatagramStream::new(&parts))?;
        let outgoing = self.table.push(OutgoingDatagramStream::new(&parts))?;
        Ok((incoming, outgoing))
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.table.get(&this)?;
        Ok(socket
            .local_address()
            .map(to_wit)
            .map_err(|e| socket.note(e))?)
    }

    fn remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.table.get(&this)?;
        Ok(socket
            .remote_address()
            .map(to_wit)
            .map_err(|e| socket.note(e))?)
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(family_to_wit(self.table.get(&this)?.family()))
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8> {
        self.on_socket(&this, UdpSocket::hop_limit)
    }

    fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        self.on_socket(&this, |socket| socket.set_hop_limit(value))
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.on_socket(&this, UdpSocket::receive_buffer_size)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.on_socket(&this, |socket| socket.set_receive_buffer_size(value))
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.on_socket(&this, UdpSocket::send_buffer_size)
    }

    fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        self.on_socket(&this, |socket| socket.set_send_buffer_size(value))
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        self.table.get(&this)?;
        let readiness = self.table.push(AlwaysReady)?;
        subscribe(self.table, readiness)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        // The OS socket closes when the last of the socket and its streams
        // is gone.
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostIncomingDatagramStream for UdpCtxView<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> SocketResult<Vec<IncomingDatagram>> {
        let max = usize::try_from(max_results)
            .unwrap_or(usize::MAX)
            .min(self.ctx.shared.limits.max_receive_batch);
        let stream = self.table.get(&this)?;
        let slot_count = RECEIVE_SLOTS.min(self.ctx.shared.limits.max_receive_batch);
        let slots = self
            .ctx
            .receive_slots
            .get_or_insert_with(|| ReceiveSlots::new(slot_count));
        let received = stream.receive(max, slots).map_err(|e| stream.note(e))?;
        Ok(received
            .into_iter()
            .map(|datagram| IncomingDatagram {
                data: datagram.data,
                remote_address: to_wit(datagram.source),
            })
            .collect())
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let readiness = self.table.get(&this)?.readiness();
        let readiness = self.table.push(readiness)?;
        subscribe(self.table, readiness)
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostOutgoingDatagramStream for UdpCtxView<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> SocketResult<u64> {
        let stream = self.table.get_mut(&this)?;
        let permitted = stream.check_send();
        Ok(permitted.map_err(|e| stream.note(e))?)
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> SocketResult<u64> {
        let stream = self.table.get_mut(&this)?;
        let transmits = datagrams.iter().map(|datagram| Transmit {
            destination: datagram.remote_address.map(to_std),
            payload: &datagram.data,
        });
        let sent = stream.send(transmits);
        Ok(sent.map_err(|e| stream.note(e))?)
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let readiness = self.table.get(&this)?.readiness();
        let readiness = self.table.push(readiness)?;
        subscribe(self.table, readiness)
    }

    fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
