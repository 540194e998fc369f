//! Real sockets: socket2 for creation and options, tokio for readiness and
//! non-blocking I/O.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use rustix::event::{PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;

#[cfg(target_os = "linux")]
use super::mmsg;
use super::{Family, ReceiveSlots, Received, SendOutcome, Transmit};

/// What a receiver waits for: a datagram, or an error the kernel queued.
const RECEIVE_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

/// A non-blocking UDP socket registered with the tokio reactor of the thread
/// that created it.
#[derive(Debug)]
pub(crate) struct DatagramSocket {
    io: tokio::net::UdpSocket,
    /// Whether segmented sends (UDP GSO) are worth trying: cleared the first
    /// time one fails for a reason other than a full buffer or a network
    /// error, after which runs go through `sendmmsg` like any batch.
    #[cfg(target_os = "linux")]
    segmented_sends: std::sync::atomic::AtomicBool,
}

impl DatagramSocket {
    /// An unbound socket of `family`; IPv6 sockets are `IPV6_V6ONLY`.
    ///
    /// # Errors
    /// `EAFNOSUPPORT` when the family is unavailable, `EMFILE`/`ENFILE` when
    /// out of descriptors. Must be called inside a tokio runtime.
    pub fn new(family: Family) -> io::Result<Self> {
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if family == Family::Ipv6 {
            // udp-create-socket.wit: "On IPv6 sockets, IPV6_V6ONLY is enabled
            // by default and can't be configured otherwise."
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        let io = tokio::net::UdpSocket::from_std(socket.into())?;
        Ok(Self {
            io,
            #[cfg(target_os = "linux")]
            segmented_sends: std::sync::atomic::AtomicBool::new(true),
        })
    }

    fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.io)
    }

    /// Binds to `addr`. When `addr` has port 0, the kernel's choice of port is
    /// pinned, so that a later disconnect keeps it.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let socket = self.sock_ref();
        socket.bind(&addr.into())?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if addr.port() == 0 {
            pin_ephemeral_port(&socket, addr)?;
        }
        Ok(())
    }

    /// Associates the socket with `peer` (`connect`).
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.sock_ref().connect(&peer.into())
    }

    /// Dissolves the association (`connect(AF_UNSPEC)`).
    pub fn disconnect(&self) -> io::Result<()> {
        match rustix::net::connect_unspec(&self.io) {
            Ok(()) => Ok(()),
            // Some kernels report disconnecting an unconnected socket; the
            // result is the state asked for either way.
            Err(rustix::io::Errno::NOTCONN) => Ok(()),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The bound address (`getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Whether the kernel will take a datagram now, without registering
    /// interest with anything that would wake the caller later.
    pub fn poll_send_ready_now(&self) -> Poll<io::Result<()>> {
        match self
            .io
            .poll_send_ready(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(result) => Poll::Ready(result),
            // The reactor has not seen this socket writable yet (a new
            // socket, or one whose buffer filled): ask the kernel, so a
            // writable socket is never reported as full.
            Poll::Pending => match self.poll_now(PollFlags::OUT) {
                Ok(flags) if flags.contains(PollFlags::OUT) => Poll::Ready(Ok(())),
                Ok(_) => Poll::Pending,
                Err(error) => Poll::Ready(Err(error)),
            },
        }
    }

    /// Resolves when the socket is writable (possibly spuriously: a following
    /// send may still find the buffer full).
    pub async fn send_ready(&self) {
        // An error here (none are known for UDP) leaves the send itself to
        // report it.
        let _ = self.io.writable().await;
    }

    /// Resolves when a datagram or an error (an ICMP report) is queued
    /// (possibly spuriously).
    pub async fn receive_ready(&self) {
        loop {
            // A pending socket error shows up only as EPOLLERR, which tokio's
            // plain readable() does not wake for.
            if self.io.ready(RECEIVE_INTEREST).await.is_err() {
                return;
            }
            // The reactor's readiness outlives the data it announced (a
            // receive that took exactly what was queued does not clear it).
            // Confirm with the kernel, and clear what is stale, so the
            // pollable is ready exactly when a receive would return something.
            let readable = self.io.try_io(Interest::READABLE, || self.receivable_now());
            let errored = self.io.try_io(Interest::ERROR, || self.error_pending_now());
            if readable.is_ok() || errored.is_ok() {
                return;
            }
        }
    }

    /// Sends datagrams from the front of `batch` until one fails or the send
    /// buffer is full. Never blocks. On Linux each run of datagrams goes to
    /// the kernel in one `sendmmsg`.
    pub fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome {
        let mut sent = 0;
        while sent < batch.len() {
            // Straight to the kernel: the reactor may not have seen the socket
            // writable yet, and check-send already decided to permit this.
            match self.send_now(&batch[sent..]) {
                Ok(count) => sent += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Clear stale writable readiness (tick-guarded, and only
                    // if the kernel confirms the buffer is full) so the send
                    // pollable waits for room.
                    let _ = self.io.try_io(Interest::WRITABLE, || self.writable_now());
                    return SendOutcome {
                        sent,
                        error: None,
                        buffer_full: true,
                    };
                }
                // A batch call that sent some datagrams and then failed
                // reports only the count (sendmmsg drops the error), so the
                // loop sends the rest again to learn the error.
                Err(error) => {
                    return SendOutcome {
                        sent,
                        error: Some(error),
                        buffer_full: false,
                    };
                }
            }
        }
        SendOutcome {
            sent,
            error: None,
            buffer_full: false,
        }
    }

    /// Sends at least the first datagram of `batch` (which is not empty), or
    /// fails with why the first could not be sent.
    fn send_now(&self, batch: &[Transmit<'_>]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if batch.len() > 1 {
            use std::sync::atomic::Ordering::Relaxed;
            let run = mmsg::segmentable_run(batch);
            if run > 1 && self.segmented_sends.load(Relaxed) {
                match mmsg::send_segmented(&self.io, &batch[..run]) {
                    Err(error)
                        if error.kind() != io::ErrorKind::WouldBlock
                            && !crate::error::is_asynchronous_network_error(&error) =>
                    {
                        // No GSO here (an old kernel, a device or path that
                        // refuses it): send the same datagrams one by one in
                        // one sendmmsg, which also finds the datagram at
                        // fault if there is one.
                        self.segmented_sends.store(false, Relaxed);
                    }
                    result => return result,
                }
            }
            return mmsg::send(&self.io, batch);
        }
        let flags = rustix::net::SendFlags::DONTWAIT;
        let transmit = &batch[0];
        match transmit.destination {
            None => rustix::net::send(&self.io, transmit.payload, flags)?,
            Some(destination) => {
                rustix::net::sendto(&self.io, transmit.payload, flags, &destination)?
            }
        };
        Ok(1)
    }

    /// Receives up to `max` queued datagrams into `slots`, replacing the
    /// contents of `landed` with where each one went. Never blocks.
    ///
    /// Fewer than `max` (and fewer than the slots) means the queue was empty
    /// at the end; none at all means nothing was queued, and the reactor's
    /// stale readiness has been cleared. An error is returned only when no
    /// datagram came before it; one met after some datagrams stays with the
    /// kernel for the next call.
    pub fn try_receive_batch(
        &self,
        slots: &mut ReceiveSlots,
        max: usize,
        landed: &mut Vec<Received>,
    ) -> io::Result<()> {
        landed.clear();
        let max = max.min(slots.count());
        if max == 0 {
            return Ok(());
        }
        // Straight to the kernel: a datagram queued since the reactor last
        // looked must still be returned ("no results are immediately
        // available" is the only reason for an empty list). A pending socket
        // error comes back from this call too.
        #[cfg(target_os = "linux")]
        let result = if max > 1 {
            mmsg::receive(&self.io, slots, max, landed)
        } else {
            self.receive_one(slots, landed)
        };
        #[cfg(not(target_os = "linux"))]
        let result = self.receive_one(slots, landed);
        match result {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Nothing queued: clear the reactor's readable and error
                // readiness unless the kernel says otherwise (tokio guards
                // each clear with the tick it read first, so a newer event
                // survives); left stale, they would keep the receive
                // pollable ready forever.
                let _ = self.io.try_io(Interest::READABLE, || self.receivable_now());
                let _ = self.io.try_io(Interest::ERROR, || self.error_pending_now());
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// One non-blocking `recvfrom` into the first slot.
    fn receive_one(&self, slots: &mut ReceiveSlots, landed: &mut Vec<Received>) -> io::Result<()> {
        let Some(buffer) = slots.slots_mut(1).next() else {
            return Ok(());
        };
        // The first length is what landed in `buffer` (the second would be
        // the datagram's full length, were it truncated).
        let (len, _, source) =
            rustix::net::recvfrom(&self.io, buffer, rustix::net::RecvFlags::DONTWAIT)?;
        let source = source
            .and_then(|source| SocketAddr::try_from(source).ok())
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        landed.push(Received {
            slot: 0,
            len,
            source,
        });
        Ok(())
    }

    /// Whether a receive would return a datagram or an error right now,
    /// asked of the kernel (one `poll`), not the reactor.
    pub fn receivable(&self) -> bool {
        self.receivable_now().is_ok()
    }

    /// `Ok(())` if the kernel holds an error for this socket, else
    /// would-block. Leaves the error in place (unlike `SO_ERROR`).
    fn error_pending_now(&self) -> io::Result<()> {
        if self.poll_now(PollFlags::empty())?.contains(PollFlags::ERR) {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// `Ok(())` if the send buffer has room now, else would-block.
    fn writable_now(&self) -> io::Result<()> {
        if self.poll_now(PollFlags::OUT)?.contains(PollFlags::OUT) {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// `Ok(())` if a receive would return a datagram or an error now, else
    /// would-block.
    fn receivable_now(&self) -> io::Result<()> {
        if self
            .poll_now(PollFlags::IN)?
            .intersects(PollFlags::IN | PollFlags::ERR)
        {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// What `poll(2)` with a zero timeout reports for `interest` (errors are
    /// always reported).
    fn poll_now(&self, interest: PollFlags) -> io::Result<PollFlags> {
        let mut fds = [PollFd::new(&self.io, interest)];
        rustix::event::poll(
            &mut fds,
            Some(&Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        )?;
        Ok(fds[0].revents())
    }

    /// `IP_TTL` or `IPV6_UNICAST_HOPS`.
    pub fn hop_limit(&self, family: Family) -> io::Result<u32> {
        match family {
            Family::Ipv4 => self.sock_ref().ttl_v4(),
            Family::Ipv6 => self.sock_ref().unicast_hops_v6(),
        }
    }

    /// Sets `IP_TTL` or `IPV6_UNICAST_HOPS`.
    pub fn set_hop_limit(&self, family: Family, value: u32) -> io::Result<()> {
        match family {
            Family::Ipv4 => self.sock_ref().set_ttl_v4(value),
            Family::Ipv6 => self.sock_ref().set_unicast_hops_v6(value),
        }
    }

    /// `SO_RCVBUF`.
    pub fn receive_buffer_size(&self) -> io::Result<usize> {
        self.sock_ref().recv_buffer_size()
    }

    /// Sets `SO_RCVBUF`; the kernel clamps (and on Linux doubles) it.
    pub fn set_receive_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock_ref()
            .set_recv_buffer_size(clamp_buffer_size(size))
    }

    /// `SO_SNDBUF`.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.sock_ref().send_buffer_size()
    }

    /// Sets `SO_SNDBUF`; the kernel clamps (and on Linux doubles) it.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock_ref()
            .set_send_buffer_size(clamp_buffer_size(size))
    }
}

/// The kernel takes buffer sizes as a C `int` and doubles them; anything
/// larger than this would wrap to a negative or tiny value.
fn clamp_buffer_size(size: usize) -> usize {
    size.min(i32::MAX as usize / 2)
}

/// Linux forgets a kernel-chosen port when a socket is disconnected
/// (`connect(AF_UNSPEC)` unhashes a socket whose port was not bound
/// explicitly), so a guest that connects and then disconnects would silently
/// stop receiving on the port it told its peers. Re-binding to the chosen
/// port explicitly marks it as the user's choice. Nobody can know the port
/// yet, so the brief unbound moment loses nothing; if another socket takes
/// the port in that moment, the socket falls back to a fresh ephemeral port.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pin_ephemeral_port(socket: &SockRef<'_>, requested: SocketAddr) -> io::Result<()> {
    let chosen = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
    let mut pinned = requested;
    pinned.set_port(chosen.port());
    rustix::net::connect_unspec(&**socket)?;
    match socket.bind(&pinned.into()) {
        Ok(()) => Ok(()),
        Err(_) => socket.bind(&requested.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disconnect_keeps_a_kernel_chosen_port() -> io::Result<()> {
        let socket = DatagramSocket::new(Family::Ipv4)?;
        socket.bind("127.0.0.1:0".parse().expect("addr"))?;
        let bound = socket.local_addr()?;
        let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(peer.local_addr()?)?;
        socket.disconnect()?;
        assert_eq!(socket.local_addr()?, bound);

        peer.send_to(b"still here", bound)?;
        let mut slots = ReceiveSlots::new(4);
        let mut landed = Vec::new();
        for _ in 0..100 {
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.receive_ready())
                .await
                .expect("datagram within 5 s");
            socket.try_receive_batch(&mut slots, 4, &mut landed)?;
            if !landed.is_empty() {
                break;
            }
        }
        assert_eq!(landed.len(), 1, "one datagram, after at most 100 wake-ups");
        assert_eq!(slots.datagram(&landed[0]), b"still here");
        assert_eq!(landed[0].source, peer.local_addr()?);
        Ok(())
    }

    #[tokio::test]
    async fn ipv6_sockets_are_v6only() -> io::Result<()> {
        let socket = DatagramSocket::new(Family::Ipv6)?;
        assert!(socket.sock_ref().only_v6()?);
        Ok(())
    }

    /// Receives until `count` datagrams have landed or 5 s pass.
    async fn receive_count(
        socket: &DatagramSocket,
        slots: &mut ReceiveSlots,
        count: usize,
    ) -> io::Result<Vec<(Vec<u8>, SocketAddr)>> {
        let mut received = Vec::new();
        let mut landed = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while received.len() < count {
            tokio::time::timeout_at(deadline, socket.receive_ready())
                .await
                .map_err(|_| io::Error::other("datagrams did not arrive within 5 s"))?;
            socket.try_receive_batch(slots, count - received.len(), &mut landed)?;
            received.extend(
                landed
                    .iter()
                    .map(|datagram| (slots.datagram(datagram).to_vec(), datagram.source)),
            );
        }
        Ok(received)
    }

    #[tokio::test]
    async fn batches_keep_every_datagram_its_size_order_and_source() -> io::Result<()> {
        let receiver = DatagramSocket::new(Family::Ipv4)?;
        receiver.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = DatagramSocket::new(Family::Ipv4)?;
        sender.bind("127.0.0.1:0".parse().expect("addr"))?;
        let destination = receiver.local_addr()?;
        // Sizes from empty to the IPv4 maximum, in one batch of 100.
        let payloads: Vec<Vec<u8>> = (0..100u32)
            .map(|i| {
                let len = match i {
                    0 => 0,
                    99 => 65_507,
                    _ => (i as usize * 37) % 1500,
                };
                vec![i as u8; len]
            })
            .collect();
        let batch: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|payload| Transmit {
                destination: Some(destination),
                payload,
            })
            .collect();
        receiver.set_receive_buffer_size(8 << 20)?;
        let outcome = sender.try_send_batch(&batch);
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.sent, 100);

        let mut slots = ReceiveSlots::new(32);
        let received = receive_count(&receiver, &mut slots, 100).await?;
        for (i, (data, source)) in received.iter().enumerate() {
            assert_eq!(data, &payloads[i], "datagram {i}");
            assert_eq!(*source, sender.local_addr()?);
        }
        // Drained: the next batch is empty, not an error.
        let mut landed = Vec::new();
        receiver.try_receive_batch(&mut slots, 32, &mut landed)?;
        assert!(landed.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_stops_at_the_first_datagram_the_kernel_refuses() -> io::Result<()> {
        let receiver = DatagramSocket::new(Family::Ipv4)?;
        receiver.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = DatagramSocket::new(Family::Ipv4)?;
        sender.connect(receiver.local_addr()?)?;
        let too_large = vec![0; 65_508];
        let batch = [
            Transmit {
                destination: None,
                payload: b"first",
            },
            Transmit {
                destination: None,
                payload: &too_large,
            },
            Transmit {
                destination: None,
                payload: b"never",
            },
        ];
        let outcome = sender.try_send_batch(&batch);
        assert_eq!(outcome.sent, 1);
        let error = outcome.error.expect("the oversized datagram's error");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::MSGSIZE.raw_os_error())
        );
        let mut slots = ReceiveSlots::new(4);
        let received = receive_count(&receiver, &mut slots, 1).await?;
        assert_eq!(received[0].0, b"first");
        Ok(())
    }

    #[tokio::test]
    async fn runs_of_equal_datagrams_arrive_as_separate_datagrams() -> io::Result<()> {
        let first = DatagramSocket::new(Family::Ipv4)?;
        first.bind("127.0.0.1:0".parse().expect("addr"))?;
        let second = DatagramSocket::new(Family::Ipv4)?;
        second.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = DatagramSocket::new(Family::Ipv4)?;
        sender.bind("127.0.0.1:0".parse().expect("addr"))?;
        // 70 equal datagrams with a shorter tail to `first`, then 3 to
        // `second`: runs longer than one segmented send, a short last
        // segment, and a change of destination.
        let mut payloads: Vec<(Vec<u8>, SocketAddr)> = (0..70u8)
            .map(|i| (vec![i; 1000], first.local_addr().expect("addr")))
            .collect();
        payloads.push((vec![70; 10], first.local_addr()?));
        payloads.extend((0..3u8).map(|i| (vec![i; 1000], second.local_addr().expect("addr"))));
        let batch: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|(payload, destination)| Transmit {
                destination: Some(*destination),
                payload,
            })
            .collect();
        first.set_receive_buffer_size(8 << 20)?;
        let outcome = sender.try_send_batch(&batch);
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.sent, 74);

        let mut slots = ReceiveSlots::new(32);
        let at_first = receive_count(&first, &mut slots, 71).await?;
        let expected: Vec<&Vec<u8>> = payloads[..71].iter().map(|(p, _)| p).collect();
        let got: Vec<&Vec<u8>> = at_first.iter().map(|(p, _)| p).collect();
        assert_eq!(got, expected);
        let at_second = receive_count(&second, &mut slots, 3).await?;
        assert_eq!(at_second.len(), 3);
        assert!(at_second.iter().all(|(p, _)| p.len() == 1000));
        Ok(())
    }
}
