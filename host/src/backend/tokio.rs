//! Real sockets: socket2 for creation and options, rustix and nix for
//! non-blocking I/O straight to the kernel, and tokio's reactor for waiting,
//! registered only when a pollable has to wait.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

use rustix::event::{PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

#[cfg(target_os = "linux")]
use super::mmsg;
use super::{
    DatagramSocket, Family, Membership, Network, Ready, ReceiveSlots, Received, SendOutcome,
    Transmit,
};

/// What a receiver waits for: a datagram, or an error the kernel queued.
const RECEIVE_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

/// A non-blocking UDP socket.
///
/// Sends and receives go straight to the kernel and never need the reactor.
/// The socket is registered with the tokio reactor of the current runtime
/// only the first time a pollable has to wait for it. Sockets that are only
/// ever used without waiting (a guest creating and dropping sockets in a
/// loop, a sender whose buffer never fills) cost the reactor nothing; tokio
/// frees a registration's memory only when its driver next runs, so
/// registering every socket up front let a guest that never yields pile
/// those up.
#[derive(Debug)]
pub(crate) struct OsSocket {
    family: Family,
    /// Declared before `socket`, so that it deregisters before the
    /// descriptor closes.
    reactor: OnceLock<AsyncFd<RawFd>>,
    socket: Socket,
    /// Whether segmented sends (UDP GSO) are worth trying: cleared the first
    /// time one fails for a reason other than a full buffer or a network
    /// error, after which runs go through `sendmmsg` like any batch.
    #[cfg(target_os = "linux")]
    segmented_sends: std::sync::atomic::AtomicBool,
    /// [`send_room`](Self::send_room), once asked (0: not yet).
    send_room: std::sync::atomic::AtomicUsize,
    /// How the socket takes coalesced runs of datagrams, once the store
    /// has set memory aside for it (see [`Coalescing`]).
    #[cfg(target_os = "linux")]
    coalescing: OnceLock<Box<std::sync::Mutex<Coalescing>>>,
    /// Whether the store set memory aside for coalesced receives; the state
    /// above is made with the first batch that looks like a bulk flow, so
    /// that other sockets do not carry it.
    #[cfg(target_os = "linux")]
    coalescing_allowed: std::sync::atomic::AtomicBool,
    /// Single-datagram receives so far: most go through `recvfrom`, which
    /// costs the kernel markedly less than `recvmmsg` but carries no
    /// control messages, so every [`DROP_COUNTER_EVERY`]th goes through
    /// `recvmmsg` to read the kernel's drop counter.
    #[cfg(target_os = "linux")]
    single_receives: std::sync::atomic::AtomicU32,
}

/// How often a run of single-datagram receives reads the kernel's
/// cumulative drop counter (see [`OsSocket::single_receives`]). The counter
/// is cumulative, so a drop is reported late by at most this many receives,
/// never missed by a socket that goes on receiving.
#[cfg(target_os = "linux")]
const DROP_COUNTER_EVERY: u32 = 64;

/// The operating system's network: real UDP sockets. The default
/// [`Network`] of every store.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsNetwork;

impl Network for OsNetwork {
    fn socket(&self, family: Family) -> io::Result<Box<dyn DatagramSocket>> {
        Ok(Box::new(OsSocket::new(family)?))
    }

    /// What setting a buffer to `size` (as the guest sets it) charges the
    /// kernel's accounting.
    fn charge_for_size(&self, size: usize) -> usize {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            size.saturating_mul(2)
        } else {
            size
        }
    }

    /// What the kernel charges a socket whose buffers are as small as it
    /// allows (measured once, on a socket made for it).
    fn minimum_charge(&self) -> usize {
        static MINIMUM: OnceLock<usize> = OnceLock::new();
        *MINIMUM.get_or_init(|| {
            let measured =
                Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).and_then(|socket| {
                    socket.set_recv_buffer_size(1)?;
                    socket.set_send_buffer_size(1)?;
                    Ok(socket.recv_buffer_size()? + socket.send_buffer_size()?)
                });
            // Linux's SOCK_MIN_RCVBUF and SOCK_MIN_SNDBUF, if it will not say.
            measured.unwrap_or(2304 + 4608)
        })
    }

    /// The largest buffer size whose charge is at most `charge`.
    fn size_for_charge(&self, charge: usize) -> usize {
        undoubled(charge)
    }

    /// The limited broadcast address, and the broadcast address of every
    /// interface, read from the system at most once a second.
    fn is_broadcast(&self, ip: std::net::Ipv4Addr) -> bool {
        ip.is_broadcast() || interface_broadcast_addresses().contains(&ip)
    }
}

/// The directed broadcast addresses of the host's interfaces, as last read
/// (at most a second ago). Interfaces rarely change; a send asks only
/// when its socket has broadcast enabled.
fn interface_broadcast_addresses() -> Vec<std::net::Ipv4Addr> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static CACHE: Mutex<Option<(Instant, Vec<std::net::Ipv4Addr>)>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((read_at, addresses)) = cache.as_ref()
        && read_at.elapsed() < Duration::from_secs(1)
    {
        return addresses.clone();
    }
    let addresses = read_interface_broadcast_addresses();
    *cache = Some((Instant::now(), addresses.clone()));
    addresses
}

#[cfg(target_os = "linux")]
fn read_interface_broadcast_addresses() -> Vec<std::net::Ipv4Addr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter_map(|interface| interface.broadcast)
        .filter_map(|address| address.as_sockaddr_in().map(|v4| v4.ip()))
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn read_interface_broadcast_addresses() -> Vec<std::net::Ipv4Addr> {
    Vec::new()
}

impl OsSocket {
    /// An unbound socket of `family`; IPv6 sockets are `IPV6_V6ONLY`.
    ///
    /// # Errors
    /// `EAFNOSUPPORT` when the family is unavailable, `EMFILE`/`ENFILE` when
    /// out of descriptors.
    fn new(family: Family) -> io::Result<Self> {
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
        #[cfg(target_os = "linux")]
        {
            // The kernel's count of datagrams dropped for a full receive
            // queue comes with each received datagram; where the option is
            // missing, drops just go uncounted.
            let _ = nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RxqOvfl, &1);
        }
        Ok(Self {
            family,
            reactor: OnceLock::new(),
            socket,
            #[cfg(target_os = "linux")]
            segmented_sends: std::sync::atomic::AtomicBool::new(true),
            send_room: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(target_os = "linux")]
            coalescing: OnceLock::new(),
            #[cfg(target_os = "linux")]
            coalescing_allowed: std::sync::atomic::AtomicBool::new(false),
            #[cfg(target_os = "linux")]
            single_receives: std::sync::atomic::AtomicU32::new(0),
        })
    }

    fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.socket)
    }

    /// Joins or leaves a group: any-source memberships through the
    /// family's own option, source-specific ones through
    /// `MCAST_JOIN_SOURCE_GROUP`.
    fn membership(&self, membership: &Membership, join: bool) -> io::Result<()> {
        use socket2::InterfaceIndexOrAddress;
        use std::net::IpAddr;
        let interface = membership.interface;
        match (membership.group, membership.source) {
            #[cfg(target_os = "linux")]
            (group, Some(source)) => {
                mmsg::source_specific_membership(&self.socket, join, group, source, interface)
            }
            #[cfg(not(target_os = "linux"))]
            (_, Some(_)) => Err(io::ErrorKind::Unsupported.into()),
            (IpAddr::V4(group), None) => {
                let interface = InterfaceIndexOrAddress::Index(interface);
                if join {
                    self.sock_ref().join_multicast_v4_n(&group, &interface)
                } else {
                    self.sock_ref().leave_multicast_v4_n(&group, &interface)
                }
            }
            (IpAddr::V6(group), None) => {
                if join {
                    self.sock_ref().join_multicast_v6(&group, interface)
                } else {
                    self.sock_ref().leave_multicast_v6(&group, interface)
                }
            }
        }
    }

    /// The socket's coalescing state, made now if the store allowed
    /// coalescing and it was not made yet.
    #[cfg(all(target_os = "linux", test))]
    fn coalescing_state(&self) -> Option<&std::sync::Mutex<Coalescing>> {
        if !self
            .coalescing_allowed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        Some(self.coalescing.get_or_init(Box::default))
    }

    /// The socket's registration with the current runtime's reactor, made
    /// on first use.
    #[expect(
        unsafe_code,
        reason = "tokio registers a descriptor it does not own only through an unsafe fn"
    )]
    fn reactor(&self) -> io::Result<&AsyncFd<RawFd>> {
        if let Some(reactor) = self.reactor.get() {
            return Ok(reactor);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("no tokio runtime to wait in"));
        }
        // SAFETY: the descriptor is `self.socket`'s, open for as long as
        // `self` is. The registration lives in `self.reactor`, which is
        // declared before `self.socket` and so dropped (deregistered) before
        // the socket closes; neither is ever taken out of `self`, so the
        // descriptor stays open and the same for the registration's whole
        // life.
        let registered = unsafe {
            AsyncFd::register_with_interest(
                self.socket.as_raw_fd(),
                Interest::READABLE | Interest::WRITABLE,
            )
        }
        .map_err(|error| error.into_parts().1)?;
        // A store runs on one thread at a time, so nobody registered it
        // since the check above.
        Ok(self.reactor.get_or_init(|| registered))
    }

    /// Waits on the reactor until `confirmed` (a question to the kernel)
    /// holds. The reactor's readiness outlives the data it announced (a
    /// receive that took exactly what was queued does not clear it), so each
    /// wake-up is confirmed with the kernel and stale readiness cleared: the
    /// pollable is ready exactly when the operation would do something.
    async fn wait_until(&self, interest: Interest, confirmed: impl Fn() -> bool) {
        if confirmed() {
            return;
        }
        let Ok(reactor) = self.reactor() else {
            // Without a reactor, report ready: the caller's next call then
            // says what the kernel says.
            return;
        };
        loop {
            let Ok(mut guard) = reactor.ready(interest).await else {
                return;
            };
            if confirmed() {
                return;
            }
            // Tick-guarded: an event newer than the one this guard saw
            // survives.
            guard.clear_ready();
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
                match mmsg::send_segmented(&self.socket, &batch[..run]) {
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
            return mmsg::send(&self.socket, batch);
        }
        let flags = rustix::net::SendFlags::DONTWAIT;
        let transmit = &batch[0];
        match transmit.destination {
            None => rustix::net::send(&self.socket, transmit.payload, flags)?,
            Some(destination) => {
                rustix::net::sendto(&self.socket, transmit.payload, flags, &destination)?
            }
        };
        Ok(1)
    }

    /// One non-blocking `recvfrom` into the first slot.
    fn receive_one(&self, slots: &mut ReceiveSlots, landed: &mut Vec<Received>) -> io::Result<()> {
        let Some(buffer) = slots.slots_mut(1).next() else {
            return Ok(());
        };
        // The first length is what landed in `buffer` (the second would be
        // the datagram's full length, were it truncated).
        let (len, _, source) =
            rustix::net::recvfrom(&self.socket, buffer, rustix::net::RecvFlags::DONTWAIT)?;
        let source = source
            .and_then(|source| SocketAddr::try_from(source).ok())
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        landed.push(Received {
            offset: 0,
            slot: 0,
            len,
            source,
        });
        Ok(())
    }

    /// Whether a receive would return a datagram or an error now (a failed
    /// `poll` counts as yes, as for [`writable_now`](Self::writable_now)).
    fn receivable_now(&self) -> bool {
        #[cfg(target_os = "linux")]
        if self.coalescing.get().is_some_and(|coalescing| {
            let coalescing = coalescing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            !coalescing.remainder.is_empty() || coalescing.pending_error.is_some()
        }) {
            return true;
        }
        self.poll_now(PollFlags::IN)
            .is_none_or(|flags| flags.intersects(PollFlags::IN | PollFlags::ERR))
    }

    /// What `poll(2)` with a zero timeout reports for `interest` (errors are
    /// always reported), or `None` if the call failed.
    fn poll_now(&self, interest: PollFlags) -> Option<PollFlags> {
        let mut fds = [PollFd::new(&self.socket, interest)];
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&timeout)).ok()?;
        Some(fds[0].revents())
    }

    /// `IP_TTL` or `IPV6_UNICAST_HOPS`.
    fn hop_limit_now(&self) -> io::Result<u32> {
        match self.family {
            Family::Ipv4 => self.sock_ref().ttl_v4(),
            Family::Ipv6 => self.sock_ref().unicast_hops_v6(),
        }
    }

    /// Sets `IP_TTL` or `IPV6_UNICAST_HOPS`.
    fn set_hop_limit_now(&self, value: u32) -> io::Result<()> {
        match self.family {
            Family::Ipv4 => self.sock_ref().set_ttl_v4(value),
            Family::Ipv6 => self.sock_ref().set_unicast_hops_v6(value),
        }
    }

    /// The send-buffer room the kernel promises when it reports the socket
    /// writable: Linux reports writable once half of `SO_SNDBUF` (as it
    /// reports it) is free (`sock_writeable`), which is the size as set.
    fn send_room(&self) -> usize {
        use std::sync::atomic::Ordering::Relaxed;
        // Asked once and after each change: UDP send buffers change only
        // when set, and check-send should not cost a syscall.
        match self.send_room.load(Relaxed) {
            0 => {
                // Half of Linux's default SO_SNDBUF, if the kernel will not say.
                let room = self.send_buffer_size().unwrap_or(106_496).max(1);
                self.send_room.store(room, Relaxed);
                room
            }
            room => room,
        }
    }
}

impl DatagramSocket for OsSocket {
    fn hop_limit(&self) -> io::Result<u8> {
        Ok(u8::try_from(self.hop_limit_now()?).unwrap_or(u8::MAX))
    }

    fn set_hop_limit(&self, value: u8) -> io::Result<()> {
        self.set_hop_limit_now(value.into())
    }

    /// As many datagrams of `payload_len` bytes as fit the room Linux
    /// promises when it reports the socket writable (half of `SO_SNDBUF` as
    /// it reports it, see `sock_writeable`), each charged its true size:
    /// headers, `sk_buff` and shared info, rounded up by the allocator,
    /// about 1 KiB beyond the payload for small ones.
    fn send_capacity(&self, payload_len: usize) -> usize {
        const SEND_BUFFER_OVERHEAD: usize = 1024;
        self.send_room() / (payload_len + SEND_BUFFER_OVERHEAD)
    }

    /// Binds to `addr`. When `addr` has port 0, the kernel's choice of port is
    /// pinned, so that a later disconnect keeps it.
    fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let socket = self.sock_ref();
        socket.bind(&addr.into())?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if addr.port() == 0 {
            pin_ephemeral_port(&socket, addr)?;
        }
        Ok(())
    }

    /// Associates the socket with `peer` (`connect`).
    fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(&peer.into())
    }

    /// Dissolves the association (`connect(AF_UNSPEC)`).
    fn disconnect(&self) -> io::Result<()> {
        match rustix::net::connect_unspec(&self.socket) {
            Ok(()) => Ok(()),
            // Some kernels report disconnecting an unconnected socket; the
            // result is the state asked for either way.
            Err(rustix::io::Errno::NOTCONN) => Ok(()),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The bound address (`getsockname`).
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no IP address"))
    }

    /// `getpeername`: `None` when not connected.
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.socket.peer_addr().ok()?.as_socket()
    }

    /// Resolves when the kernel has room for a datagram.
    fn send_ready(&self) -> Ready<'_> {
        Box::pin(async move {
            self.wait_until(Interest::WRITABLE, || self.writable_now())
                .await;
        })
    }

    /// Resolves when a datagram or an error (an ICMP report) is queued.
    fn receive_ready(&self) -> Ready<'_> {
        Box::pin(async move {
            // A pending socket error shows up only as EPOLLERR, which plain
            // readable interest does not wake for.
            self.wait_until(RECEIVE_INTEREST, || self.receivable_now())
                .await;
        })
    }

    /// Sends datagrams from the front of `batch` until one fails or the send
    /// buffer is full. Never blocks. On Linux each run of datagrams goes to
    /// the kernel in one `sendmmsg`.
    fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome {
        let mut sent = 0;
        while sent < batch.len() {
            // Straight to the kernel: the reactor may not have seen the socket
            // writable yet, and check-send already decided to permit this.
            // A batch call that sent some datagrams and then failed reports
            // only the count (sendmmsg drops the error), so the loop sends
            // the rest again to learn the error.
            match self.send_now(&batch[sent..]) {
                Ok(count) => sent += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return SendOutcome {
                        sent,
                        error: None,
                        buffer_full: true,
                    };
                }
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

    /// Receives up to `max` queued datagrams into `slots`, replacing the
    /// contents of `landed` with where each one went. Never blocks.
    ///
    /// Fewer than `max` (and fewer than the slots) means the queue was empty
    /// at the end; none at all means nothing was queued. An error is returned only when no
    /// datagram came before it; one met after some datagrams stays with the
    /// kernel for the next call.
    fn try_receive_batch(
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
        let result = match self.coalescing.get() {
            Some(coalescing) => coalescing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .receive(&self.socket, slots, max, landed),
            None if max == 1
                && !self
                    .single_receives
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .is_multiple_of(DROP_COUNTER_EVERY) =>
            {
                self.receive_one(slots, landed)
            }
            None => {
                let result = receive_plain(&self.socket, slots, max, landed);
                // The state is made with the first batch that looks like a
                // bulk flow: most sockets never see one.
                if looks_bulk(landed)
                    && self
                        .coalescing_allowed
                        .load(std::sync::atomic::Ordering::Relaxed)
                {
                    let _ = self
                        .coalescing
                        .set(Box::new(std::sync::Mutex::new(Coalescing {
                            bulk_batches: 1,
                            ..Coalescing::default()
                        })));
                }
                result
            }
        };
        #[cfg(not(target_os = "linux"))]
        let result = self.receive_one(slots, landed);
        match result {
            Ok(()) => Ok(()),
            // Nothing queued.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The rest of the largest buffer the kernel coalesces.
    #[cfg(target_os = "linux")]
    fn coalescing_reserve(&self) -> usize {
        ReceiveSlots::SLOT_SIZE
    }

    #[cfg(target_os = "linux")]
    fn kernel_drops(&self) -> Option<u32> {
        mmsg::kernel_drops(&self.socket).ok()
    }

    #[cfg(target_os = "linux")]
    fn allow_coalescing(&self) {
        self.coalescing_allowed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn shared_port(&self) -> io::Result<bool> {
        let reuse_port = {
            #[cfg(unix)]
            {
                self.sock_ref().reuse_port()?
            }
            #[cfg(not(unix))]
            {
                true
            }
        };
        Ok(self.sock_ref().reuse_address()? && reuse_port)
    }

    /// `SO_REUSEADDR` lets sockets share a port for multicast and
    /// broadcast; `SO_REUSEPORT` also lets them share one for unicast (the
    /// kernel spreads unicast datagrams over them). Both, so that a port
    /// is shared with any other program that set either.
    fn set_shared_port(&self, shared: bool) -> io::Result<()> {
        self.sock_ref().set_reuse_address(shared)?;
        #[cfg(unix)]
        self.sock_ref().set_reuse_port(shared)?;
        Ok(())
    }

    fn join_group(&self, membership: &Membership) -> io::Result<()> {
        self.membership(membership, true)
    }

    fn leave_group(&self, membership: &Membership) -> io::Result<()> {
        self.membership(membership, false)
    }

    fn multicast_hop_limit(&self) -> io::Result<u8> {
        let value = match self.family {
            Family::Ipv4 => self.sock_ref().multicast_ttl_v4()?,
            Family::Ipv6 => self.sock_ref().multicast_hops_v6()?,
        };
        Ok(u8::try_from(value).unwrap_or(u8::MAX))
    }

    fn set_multicast_hop_limit(&self, value: u8) -> io::Result<()> {
        match self.family {
            Family::Ipv4 => self.sock_ref().set_multicast_ttl_v4(value.into()),
            Family::Ipv6 => self.sock_ref().set_multicast_hops_v6(value.into()),
        }
    }

    fn multicast_loopback(&self) -> io::Result<bool> {
        match self.family {
            Family::Ipv4 => self.sock_ref().multicast_loop_v4(),
            Family::Ipv6 => self.sock_ref().multicast_loop_v6(),
        }
    }

    fn set_multicast_loopback(&self, enabled: bool) -> io::Result<()> {
        match self.family {
            Family::Ipv4 => self.sock_ref().set_multicast_loop_v4(enabled),
            Family::Ipv6 => self.sock_ref().set_multicast_loop_v6(enabled),
        }
    }

    fn set_multicast_interface(&self, index: u32) -> io::Result<()> {
        match self.family {
            #[cfg(target_os = "linux")]
            Family::Ipv4 => rustix::net::sockopt::set_ip_multicast_if_with_ifindex(
                &self.socket,
                &std::net::Ipv4Addr::UNSPECIFIED,
                &std::net::Ipv4Addr::UNSPECIFIED,
                index,
            )
            .map_err(io::Error::from),
            #[cfg(not(target_os = "linux"))]
            Family::Ipv4 if index == 0 => self
                .sock_ref()
                .set_multicast_if_v4(&std::net::Ipv4Addr::UNSPECIFIED),
            #[cfg(not(target_os = "linux"))]
            Family::Ipv4 => Err(io::ErrorKind::Unsupported.into()),
            Family::Ipv6 => self.sock_ref().set_multicast_if_v6(index),
        }
    }

    fn broadcast(&self) -> io::Result<bool> {
        self.sock_ref().broadcast()
    }

    fn set_broadcast(&self, enabled: bool) -> io::Result<()> {
        self.sock_ref().set_broadcast(enabled)
    }

    /// Whether the send buffer has room now (one `poll`). A failed `poll`
    /// counts as yes, so that the send itself reports what is wrong instead
    /// of a waiter waiting forever.
    fn writable_now(&self) -> bool {
        self.poll_now(PollFlags::OUT)
            .is_none_or(|flags| flags.contains(PollFlags::OUT))
    }

    /// `SO_RCVBUF`, in the units it is set in: Linux doubles what it is
    /// given (for its bookkeeping) and reports the doubled value, so the
    /// value is halved there, and a size set reads back as itself.
    fn receive_buffer_size(&self) -> io::Result<usize> {
        self.sock_ref().recv_buffer_size().map(undoubled)
    }

    /// Sets `SO_RCVBUF`; the kernel may clamp it.
    fn set_receive_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock_ref()
            .set_recv_buffer_size(clamp_buffer_size(size))
    }

    /// `SO_SNDBUF`, in the units it is set in (see
    /// [`receive_buffer_size`](Self::receive_buffer_size)).
    fn send_buffer_size(&self) -> io::Result<usize> {
        self.sock_ref().send_buffer_size().map(undoubled)
    }

    /// Sets `SO_SNDBUF`; the kernel may clamp it.
    fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        let result = self
            .sock_ref()
            .set_send_buffer_size(clamp_buffer_size(size));
        // Asked again on next use, whatever the kernel made of it.
        self.send_room
            .store(0, std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// What the kernel may hold for this socket's receive and send queues,
    /// in bytes, as it accounts them (`SO_RCVBUF` and `SO_SNDBUF` as
    /// reported, Linux's doubling included).
    fn buffer_charges(&self) -> io::Result<(usize, usize)> {
        let socket = self.sock_ref();
        Ok((socket.recv_buffer_size()?, socket.send_buffer_size()?))
    }
}

/// A buffer size as the kernel reports it, in the units it is set in.
fn undoubled(reported: usize) -> usize {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        reported / 2
    } else {
        reported
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

/// One `recvmmsg` of up to `max` datagrams, each in its own slot: for a
/// socket that never takes coalesced buffers.
#[cfg(target_os = "linux")]
fn receive_plain(
    socket: &Socket,
    slots: &mut ReceiveSlots,
    max: usize,
    landed: &mut Vec<Received>,
) -> io::Result<()> {
    let info = mmsg::receive(socket, slots.slots_mut(max), |slot, message| {
        landed.push(Received {
            slot,
            offset: 0,
            len: message.len,
            source: message.source,
        });
    })?;
    if let Some(drops) = info.kernel_drops {
        slots.note_kernel_drops(drops);
    }
    Ok(())
}

/// Datagrams a socket receives in a row, each alone in its buffer, before
/// it stops asking the kernel to coalesce.
#[cfg(target_os = "linux")]
const UNCOALESCED_STREAK: u32 = 256;

/// Batches in a row that look like one bulk flow (at least
/// [`BULK_BATCH`] datagrams, one source, one size) before a socket asks the
/// kernel to coalesce.
#[cfg(target_os = "linux")]
const BULK_BATCHES: u32 = 2;

/// The smallest batch that counts towards [`BULK_BATCHES`].
#[cfg(target_os = "linux")]
const BULK_BATCH: usize = 16;

/// Whether `batch` looks like part of one bulk flow: at least [`BULK_BATCH`]
/// datagrams, from one source, of one size.
#[cfg(target_os = "linux")]
fn looks_bulk(batch: &[Received]) -> bool {
    batch.len() >= BULK_BATCH
        && batch
            .iter()
            .all(|received| received.source == batch[0].source && received.len == batch[0].len)
}

/// Coalesced receives (UDP GRO) for one socket.
///
/// The kernel can hand a socket a run of equal-sized datagrams from one
/// source as one buffer: one syscall and one copy for up to 64 datagrams.
/// It pays off for bulk flows and costs batching for everything else, so
/// the socket turns it on when its batches look like one bulk flow and off
/// when it stops seeing coalesced buffers.
///
/// Invariants:
/// - While `kernel_coalesces` is set, or `draining` is, the queue may hold
///   coalesced buffers, so a receive reads at most `ceil(wanted / 64)`
///   buffers per syscall: all but the last are then taken whole, and only
///   the last can have datagrams left over.
/// - Left-over datagrams (at most one buffer's worth) wait in `remainder`
///   and go out first, before anything newer from the kernel.
/// - `draining` is cleared only by a receive that found the queue empty
///   after the kernel stopped coalescing: from then on, every buffer is one
///   datagram and a receive may read `wanted` buffers at once.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub(crate) struct Coalescing {
    kernel_coalesces: bool,
    draining: bool,
    /// Datagrams received alone in a row while the kernel coalesces.
    uncoalesced: u32,
    /// Batches in a row that looked like one bulk flow.
    bulk_batches: u32,
    remainder: Remainder,
    /// An error the kernel reported to a receive that had already taken
    /// left-over datagrams: the kernel has forgotten it, so it waits here
    /// for the next receive.
    pending_error: Option<io::Error>,
}

/// The datagrams of a coalesced buffer a receive did not take.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
struct Remainder {
    /// The buffer's bytes from the first datagram not yet taken; its
    /// capacity (one slot) is allocated once and kept.
    bytes: Vec<u8>,
    /// Where the next datagram starts in `bytes`.
    start: usize,
    segment_size: usize,
    source: Option<SocketAddr>,
}

#[cfg(target_os = "linux")]
impl Remainder {
    fn is_empty(&self) -> bool {
        self.start >= self.bytes.len()
    }

    /// Keeps `bytes` (a coalesced buffer's datagrams from the first one not
    /// taken) for the next receives.
    fn keep(&mut self, bytes: &[u8], segment_size: usize, source: SocketAddr) {
        debug_assert!(self.is_empty(), "one buffer's rest at a time");
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        self.start = 0;
        self.segment_size = segment_size;
        self.source = Some(source);
    }

    /// Copies up to `max` datagrams into `slot` (slot index `index`), one
    /// after another, recording each in `landed`.
    fn take_into(&mut self, slot: &mut [u8], index: usize, max: usize, landed: &mut Vec<Received>) {
        let Some(source) = self.source else {
            return;
        };
        let rest = &self.bytes[self.start..];
        let count = rest.len().div_ceil(self.segment_size).min(max);
        let taken = (count * self.segment_size).min(rest.len());
        slot[..taken].copy_from_slice(&rest[..taken]);
        for (n, start) in (0..taken).step_by(self.segment_size).enumerate() {
            if n == count {
                break;
            }
            landed.push(Received {
                slot: index,
                offset: start,
                len: self.segment_size.min(taken - start),
                source,
            });
        }
        self.start += taken;
    }
}

#[cfg(target_os = "linux")]
impl Coalescing {
    /// Up to `max` datagrams: first any left from the last coalesced buffer,
    /// then from the kernel.
    fn receive(
        &mut self,
        socket: &Socket,
        slots: &mut ReceiveSlots,
        max: usize,
        landed: &mut Vec<Received>,
    ) -> io::Result<()> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        let mut first_free_slot = 0;
        if !self.remainder.is_empty() {
            self.remainder.take_into(slots.slot_mut(0), 0, max, landed);
            first_free_slot = 1;
            if landed.len() == max || slots.count() == 1 {
                return Ok(());
            }
        }
        let wanted = max - landed.len();
        let careful = self.kernel_coalesces || self.draining;
        let buffers = if careful {
            wanted.div_ceil(mmsg::MAX_SEGMENTS)
        } else {
            wanted
        }
        .min(slots.count() - first_free_slot);
        let before = landed.len();
        let mut left_over = None;
        let mut unkept = 0usize;
        let (mut coalesced, mut alone) = (0u32, 0u32);
        let info = mmsg::receive(
            socket,
            slots
                .slots_mut(first_free_slot + buffers)
                .skip(first_free_slot),
            |buffer, message| {
                let slot = first_free_slot + buffer;
                let segment_size = message.segment_size.unwrap_or(message.len.max(1));
                let mut offset = 0;
                if message.segment_size.is_some() {
                    coalesced += 1;
                } else {
                    alone += 1;
                }
                loop {
                    if landed.len() == max {
                        if left_over.is_none() {
                            left_over = Some((slot, offset, message));
                        } else {
                            unkept += message.len - offset;
                        }
                        break;
                    }
                    landed.push(Received {
                        slot,
                        offset,
                        len: segment_size.min(message.len - offset),
                        source: message.source,
                    });
                    offset += segment_size;
                    if offset >= message.len {
                        break;
                    }
                }
            },
        );
        let info = match info {
            Ok(info) => info,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.draining = false;
                return if landed.is_empty() {
                    Err(error)
                } else {
                    Ok(())
                };
            }
            Err(error) if landed.is_empty() => return Err(error),
            // Only left-over datagrams came before it: the kernel reported
            // the error to this call, so it is kept for the next one.
            Err(error) => {
                self.pending_error = Some(error);
                return Ok(());
            }
        };
        if let Some(drops) = info.kernel_drops {
            slots.note_kernel_drops(drops);
        }
        if let Some((slot, offset, message)) = left_over {
            let bytes = &slots.slot_mut(slot)[offset..message.len];
            if self.remainder.is_empty() {
                let segment_size = message.segment_size.unwrap_or(message.len).max(1);
                self.remainder.keep(bytes, segment_size, message.source);
            } else {
                unkept += bytes.len();
            }
        }
        if unkept > 0 {
            // Not reachable while the invariants hold: only the last buffer
            // of a receive can have datagrams left over, and the remainder
            // was empty before it.
            tracing::warn!(
                bytes = unkept,
                "datagrams of a coalesced buffer had no room to wait and were dropped"
            );
        }
        if info.messages < buffers {
            // The queue ran dry: whatever the kernel coalesced before it
            // stopped has been read.
            self.draining = false;
        }
        self.adapt(socket, &landed[before..], coalesced, alone);
        Ok(())
    }

    /// Turns the kernel's coalescing on for what looks like a bulk flow, and
    /// off when coalesced buffers stop coming.
    fn adapt(&mut self, socket: &Socket, batch: &[Received], coalesced: u32, alone: u32) {
        if self.kernel_coalesces {
            if coalesced > 0 {
                self.uncoalesced = 0;
            } else {
                self.uncoalesced = self.uncoalesced.saturating_add(alone);
            }
            if self.uncoalesced >= UNCOALESCED_STREAK && mmsg::set_coalescing(socket, false).is_ok()
            {
                self.kernel_coalesces = false;
                self.draining = true;
                self.bulk_batches = 0;
            }
            return;
        }
        let bulk = batch.len() >= BULK_BATCH
            && batch
                .iter()
                .all(|received| received.source == batch[0].source && received.len == batch[0].len);
        self.bulk_batches = if bulk { self.bulk_batches + 1 } else { 0 };
        if self.bulk_batches >= BULK_BATCHES && mmsg::set_coalescing(socket, true).is_ok() {
            self.kernel_coalesces = true;
            self.uncoalesced = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disconnect_keeps_a_kernel_chosen_port() -> io::Result<()> {
        let socket = OsSocket::new(Family::Ipv4)?;
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
        let socket = OsSocket::new(Family::Ipv6)?;
        assert!(socket.sock_ref().only_v6()?);
        Ok(())
    }

    /// Receives until `count` datagrams have landed or 5 s pass.
    async fn receive_count(
        socket: &OsSocket,
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
        let receiver = OsSocket::new(Family::Ipv4)?;
        receiver.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = OsSocket::new(Family::Ipv4)?;
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
        let receiver = OsSocket::new(Family::Ipv4)?;
        receiver.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = OsSocket::new(Family::Ipv4)?;
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
        let first = OsSocket::new(Family::Ipv4)?;
        first.bind("127.0.0.1:0".parse().expect("addr"))?;
        let second = OsSocket::new(Family::Ipv4)?;
        second.bind("127.0.0.1:0".parse().expect("addr"))?;
        let sender = OsSocket::new(Family::Ipv4)?;
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

    /// A socket allowed to coalesce, with the kernel coalescing already.
    #[cfg(target_os = "linux")]
    fn coalescing_receiver() -> io::Result<OsSocket> {
        let socket = OsSocket::new(Family::Ipv4)?;
        socket.bind("127.0.0.1:0".parse().expect("addr"))?;
        socket.allow_coalescing();
        mmsg::set_coalescing(&socket.socket, true)?;
        socket
            .coalescing_state()
            .expect("allowed")
            .lock()
            .expect("lock")
            .kernel_coalesces = true;
        Ok(socket)
    }

    /// `count` datagrams of `size` bytes (the last `size / 2`), each
    /// starting with its number from `first`.
    fn numbered(first: u8, count: usize, size: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|n| {
                let len = if n + 1 == count { size / 2 } else { size };
                let mut payload = vec![0xee; len];
                payload[0] = first + n as u8;
                payload
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn coalesced_runs_come_out_one_by_one_within_max() -> io::Result<()> {
        let receiver = coalescing_receiver()?;
        let to = receiver.local_addr()?;
        let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let payloads = numbered(0, 64, 100);
        let run: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|payload| Transmit {
                destination: Some(to),
                payload,
            })
            .collect();
        mmsg::send_segmented(&sender, &run)?;

        let mut slots = ReceiveSlots::new(4);
        let mut landed = Vec::new();
        let mut received = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while received.len() < payloads.len() {
            // Ready whenever datagrams wait, in the kernel or left over from
            // a coalesced buffer.
            tokio::time::timeout_at(deadline, receiver.receive_ready())
                .await
                .map_err(|_| io::Error::other("not ready within 5 s"))?;
            receiver.try_receive_batch(&mut slots, 10, &mut landed)?;
            assert!(landed.len() <= 10, "never more than asked for");
            for datagram in &landed {
                assert_eq!(datagram.source, sender.local_addr()?);
                received.push(slots.datagram(datagram).to_vec());
            }
        }
        assert_eq!(received, payloads, "every datagram, whole and in order");
        let coalescing = receiver
            .coalescing_state()
            .expect("allowed")
            .lock()
            .expect("lock");
        assert!(coalescing.remainder.is_empty());
        assert!(
            coalescing.remainder.bytes.capacity() > 0,
            "the kernel coalesced the run, so its rest waited between receives"
        );
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_bulk_flow_turns_coalescing_on_and_single_datagrams_off() -> io::Result<()> {
        let receiver = OsSocket::new(Family::Ipv4)?;
        receiver.bind("127.0.0.1:0".parse().expect("addr"))?;
        receiver.allow_coalescing();
        let to = receiver.local_addr()?;
        let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let state = |socket: &OsSocket| {
            let coalescing = socket
                .coalescing
                .get()
                .expect("allowed")
                .lock()
                .expect("lock");
            (coalescing.kernel_coalesces, coalescing.draining)
        };
        let mut slots = ReceiveSlots::new(32);

        // Two full batches from one source, of one size: a bulk flow.
        for payload in numbered(0, 80, 200) {
            sender.send_to(&payload, to)?;
        }
        let bulk = receive_count(&receiver, &mut slots, 80).await?;
        assert_eq!(bulk.len(), 80);
        assert_eq!(
            state(&receiver),
            (true, false),
            "coalescing after a bulk flow"
        );

        // Datagrams that come alone, many in a row: off, then drained. In
        // rounds, so that the receive queue never overflows.
        for round in 0..(UNCOALESCED_STREAK as usize / 40 + 1) {
            for n in 0..40 {
                sender.send_to(&[round as u8; 40][..=n], to)?;
            }
            let alone = receive_count(&receiver, &mut slots, 40).await?;
            assert!(
                alone
                    .iter()
                    .enumerate()
                    .all(|(n, (bytes, _))| bytes.len() == n + 1)
            );
        }
        let mut landed = Vec::new();
        receiver.try_receive_batch(&mut slots, 32, &mut landed)?;
        assert!(landed.is_empty());
        assert_eq!(
            state(&receiver),
            (false, false),
            "off, and nothing coalesced left"
        );
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_error_after_left_over_datagrams_waits_for_the_next_receive() -> io::Result<()> {
        let receiver = coalescing_receiver()?;
        let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let sender_addr = sender.local_addr()?;
        receiver.connect(sender_addr)?;
        let payloads = numbered(0, 64, 100);
        let run: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|payload| Transmit {
                destination: Some(receiver.local_addr().expect("bound")),
                payload,
            })
            .collect();
        mmsg::send_segmented(&sender, &run)?;
        let mut slots = ReceiveSlots::new(64);
        let mut landed = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), receiver.receive_ready())
            .await
            .map_err(|_| io::Error::other("not ready within 5 s"))?;
        receiver.try_receive_batch(&mut slots, 10, &mut landed)?;
        assert_eq!(landed.len(), 10);

        // The peer goes away; a datagram to it brings back port-unreachable.
        drop(sender);
        receiver.try_send_batch(&[Transmit {
            destination: None,
            payload: b"anyone?",
        }]);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        // Wait for the kernel to queue the error.
        while receiver
            .poll_now(PollFlags::IN)
            .is_some_and(|flags| !flags.contains(PollFlags::ERR))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no ICMP error within 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        receiver.try_receive_batch(&mut slots, 64, &mut landed)?;
        assert_eq!(landed.len(), 54, "the rest of the run first");
        assert!(receiver.receivable_now(), "the error is still to come");
        let error = receiver
            .try_receive_batch(&mut slots, 64, &mut landed)
            .expect_err("the error, on the next receive");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        Ok(())
    }
}
