//! Linux's batch syscalls through nix's safe wrappers: one syscall for a
//! whole `send` or `receive` batch. `sendmmsg` and `recvmmsg` carry any
//! mix of datagrams; a run of equal-sized datagrams to one destination goes
//! as one segmented send (UDP GSO), which the kernel builds as a single
//! packet and splits into datagrams on the wire (or, on loopback, at the
//! receiving socket), so the receiver sees ordinary datagrams either way.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

use super::{ReceiveSlots, Received, Transmit};

/// The kernel refuses vectors longer than this (`UIO_MAXIOV`).
const MAX_VECTOR: usize = 1024;

/// Most segments the kernel accepts in one segmented send
/// (`UDP_MAX_SEGMENTS` on older kernels; newer ones take more).
const MAX_SEGMENTS: usize = 64;

/// Most bytes one segmented send may carry: the largest IPv4 UDP payload.
const MAX_SEGMENTED_BYTES: usize = 65_507;

/// How many datagrams from the front of `batch` can go as one segmented
/// send: all to the same destination, all of the first one's size except
/// that the last may be shorter, none empty. Below 2 there is nothing to
/// gain.
pub(super) fn segmentable_run(batch: &[Transmit<'_>]) -> usize {
    let Some(first) = batch.first() else {
        return 0;
    };
    let size = first.payload.len();
    if size == 0 {
        return 0;
    }
    let limit = MAX_SEGMENTS.min(MAX_SEGMENTED_BYTES / size);
    let mut run = 0;
    for transmit in batch.iter().take(limit) {
        if transmit.destination != first.destination
            || transmit.payload.is_empty()
            || transmit.payload.len() > size
        {
            break;
        }
        run += 1;
        if transmit.payload.len() < size {
            // A shorter segment can only be the last.
            break;
        }
    }
    run
}

/// Sends `run` (from [`segmentable_run`]) as one segmented send: all of it
/// or none.
pub(super) fn send_segmented(socket: &impl AsRawFd, run: &[Transmit<'_>]) -> io::Result<usize> {
    let payloads: Vec<IoSlice<'_>> = run
        .iter()
        .map(|transmit| IoSlice::new(transmit.payload))
        .collect();
    let segment_size = u16::try_from(run[0].payload.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let destination = run[0].destination.map(SockaddrStorage::from);
    nix::sys::socket::sendmsg(
        socket.as_raw_fd(),
        &payloads,
        &[ControlMessage::UdpGsoSegments(&segment_size)],
        MsgFlags::MSG_DONTWAIT,
        destination.as_ref(),
    )
    .map_err(io::Error::from)?;
    Ok(run.len())
}

/// Sends the front of `batch` in one `sendmmsg`: returns how many datagrams
/// the kernel took (at least one), or why it took none.
pub(super) fn send(socket: &impl AsRawFd, batch: &[Transmit<'_>]) -> io::Result<usize> {
    let batch = &batch[..batch.len().min(MAX_VECTOR)];
    let payloads: Vec<[IoSlice<'_>; 1]> = batch
        .iter()
        .map(|transmit| [IoSlice::new(transmit.payload)])
        .collect();
    let destinations: Vec<Option<SockaddrStorage>> = batch
        .iter()
        .map(|transmit| transmit.destination.map(SockaddrStorage::from))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(batch.len(), None);
    let sent = nix::sys::socket::sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &payloads,
        &destinations,
        [],
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?
    .count();
    if sent == 0 {
        // Not expected for a non-empty batch; report it as a full buffer
        // rather than spin.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(sent)
}

/// Receives up to `max` queued datagrams into the first `max` slots in one
/// `recvmmsg`, appending where each landed to `landed`. Fails with
/// would-block when nothing is queued.
pub(super) fn receive(
    socket: &impl AsRawFd,
    slots: &mut ReceiveSlots,
    max: usize,
    landed: &mut Vec<Received>,
) -> io::Result<()> {
    let max = max.min(MAX_VECTOR);
    let drops = receive_into(socket, slots, max, landed)?;
    if let Some(drops) = drops {
        slots.note_kernel_drops(drops);
    }
    Ok(())
}

/// [`receive`]'s syscall: returns the kernel's drop counter if a datagram
/// carried one.
fn receive_into(
    socket: &impl AsRawFd,
    slots: &mut ReceiveSlots,
    max: usize,
    landed: &mut Vec<Received>,
) -> io::Result<Option<u32>> {
    let mut buffers: Vec<[IoSliceMut<'_>; 1]> = slots
        .slots_mut(max)
        .map(|slot| [IoSliceMut::new(slot)])
        .collect();
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(buffers.len(), Some(nix::cmsg_space!(u32)));
    let results = nix::sys::socket::recvmmsg(
        socket.as_raw_fd(),
        &mut headers,
        buffers.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(io::Error::from)?;
    let mut drops = None;
    for (slot, message) in results.enumerate() {
        drops = drops.max(drop_counter(&message));
        let source = message
            .address
            .as_ref()
            .and_then(socket_addr)
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        landed.push(Received {
            slot,
            len: message.bytes,
            source,
        });
    }
    Ok(drops)
}

/// Receives one queued datagram into the first slot with `recvmsg`, so
/// that the kernel's drop counter comes with it.
pub(super) fn receive_one(
    socket: &impl AsRawFd,
    slots: &mut ReceiveSlots,
    landed: &mut Vec<Received>,
) -> io::Result<()> {
    let mut control = [0u8; 64];
    let (len, source, drops) = {
        let Some(buffer) = slots.slots_mut(1).next() else {
            return Ok(());
        };
        let mut iov = [IoSliceMut::new(buffer)];
        let message = nix::sys::socket::recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        (message.bytes, message.address, drop_counter(&message))
    };
    if let Some(drops) = drops {
        slots.note_kernel_drops(drops);
    }
    let source = source
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
    landed.push(Received {
        slot: 0,
        len,
        source,
    });
    Ok(())
}

/// The kernel's count of datagrams this socket dropped for a full receive
/// queue, as of this datagram (`SO_RXQ_OVFL`; absent until the first drop).
fn drop_counter<S>(message: &nix::sys::socket::RecvMsg<'_, '_, S>) -> Option<u32> {
    message.cmsgs().ok()?.find_map(|cmsg| match cmsg {
        nix::sys::socket::ControlMessageOwned::RxqOvfl(count) => Some(count),
        _ => None,
    })
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddrV4::from(*v4).into());
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddrV6::from(*v6).into())
}
