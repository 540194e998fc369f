//! Real sockets: socket2 for creation and options, tokio for readiness and
//! non-blocking I/O.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use rustix::event::{PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;

use super::{Family, SendOutcome, Transmit};

/// What a receiver waits for: a datagram, or an error the kernel queued.
const RECEIVE_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

/// A non-blocking UDP socket registered with the tokio reactor of the thread
/// that created it.
#[derive(Debug)]
pub(crate) struct DatagramSocket {
    io: tokio::net::UdpSocket,
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
        Ok(Self { io })
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
    /// buffer is full. Never blocks.
    pub fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome {
        let mut sent = 0;
        for transmit in batch {
            // Straight to the kernel: the reactor may not have seen the socket
            // writable yet, and check-send already asked the kernel.
            let flags = rustix::net::SendFlags::DONTWAIT;
            let result = match transmit.destination {
                None => rustix::net::send(&self.io, transmit.payload, flags),
                Some(destination) => {
                    rustix::net::sendto(&self.io, transmit.payload, flags, &destination)
                }
            };
            match result.map_err(io::Error::from) {
                Ok(_) => sent += 1,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Clear stale writable readiness (tick-guarded, and only
                    // if the kernel confirms the buffer is full) so the send
                    // pollable waits for room.
                    let _ = self.io.try_io(Interest::WRITABLE, || self.writable_now());
                    return SendOutcome { sent, error: None };
                }
                Err(error) => {
                    return SendOutcome {
                        sent,
                        error: Some(error),
                    };
                }
            }
        }
        SendOutcome { sent, error: None }
    }

    /// Receives one queued datagram into `buffer`, returning its length and
    /// source, or `Ok(None)` when nothing is queued. Never blocks.
    pub fn try_receive(&self, buffer: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        // Straight to the kernel: a datagram queued since the reactor last
        // looked must still be returned ("no results are immediately
        // available" is the only reason for an empty list). A pending socket
        // error comes back from this call too.
        match self.receive_now(buffer) {
            Ok(received) => Ok(Some(received)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Nothing queued: clear the reactor's readable and error
                // readiness unless the kernel says otherwise (tokio guards
                // each clear with the tick it read first, so a newer event
                // survives); left stale, they would keep the receive
                // pollable ready forever.
                let _ = self.io.try_io(Interest::READABLE, || self.receivable_now());
                let _ = self.io.try_io(Interest::ERROR, || self.error_pending_now());
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// One non-blocking `recvfrom`, which also reports a pending socket
    /// error (and clears it, as the kernel does).
    fn receive_now(&self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        // The first length is what landed in `buffer` (the second would be
        // the datagram's full length, were it truncated).
        let (len, _, source) =
            rustix::net::recvfrom(&self.io, &mut *buffer, rustix::net::RecvFlags::DONTWAIT)?;
        let source = source
            .and_then(|source| SocketAddr::try_from(source).ok())
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        Ok((len, source))
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
        let mut buffer = [0; 64];
        let (len, from) = loop {
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.receive_ready())
                .await
                .expect("datagram within 5 s");
            if let Some(received) = socket.try_receive(&mut buffer)? {
                break received;
            }
        };
        assert_eq!(&buffer[..len], b"still here");
        assert_eq!(from, peer.local_addr()?);
        Ok(())
    }

    #[tokio::test]
    async fn ipv6_sockets_are_v6only() -> io::Result<()> {
        let socket = DatagramSocket::new(Family::Ipv6)?;
        assert!(socket.sock_ref().only_v6()?);
        Ok(())
    }
}
