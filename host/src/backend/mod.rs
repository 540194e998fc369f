//! The seam between the WIT state machine and a network.
//!
//! Everything above this module speaks in readiness and batches: "is the
//! socket writable", "send these datagrams without blocking", "receive up to
//! N datagrams that are already queued". Everything a network knows lives
//! below it: the operating system's in [`tokio`] (socket creation flags,
//! the Linux port-pinning workaround, option syscalls, buffer doubling,
//! permit sizing), a simulated one in [`sim`], and packet capture as a
//! layer over either in [`capture`].
//!
//! ```text
//!  socket.rs / streams.rs ──> dyn Network ──> dyn DatagramSocket
//!                                  ├─ OsNetwork  (tokio.rs, mmsg.rs: the kernel)
//!                                  ├─ SimNode    (sim/: memory, seeded faults)
//!                                  └─ capture    (a pcap layer over either)
//! ```

pub(crate) mod capture;
#[cfg(target_os = "linux")]
mod mmsg;
mod region;
pub(crate) mod sim;
pub(crate) mod tokio;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

/// A future that resolves when a socket is ready for something.
pub type Ready<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where a store's sockets come from: the operating system's network
/// ([`OsNetwork`](crate::OsNetwork), the default) or a simulated one
/// ([`SimNode`](crate::SimNode)). Everything it knows about buffers,
/// errnos and time stays below this line.
pub trait Network: Send + Sync + fmt::Debug + 'static {
    /// A new, unbound socket of `family`.
    ///
    /// # Errors
    /// As `socket(2)` would: `EAFNOSUPPORT`, `EMFILE`, `ENFILE`.
    fn socket(&self, family: Family) -> io::Result<Box<dyn DatagramSocket>>;

    /// What a socket whose buffers are as small as allowed is charged
    /// against the store's buffer budget.
    fn minimum_charge(&self) -> usize;

    /// What a buffer set to `size` is charged.
    fn charge_for_size(&self, size: usize) -> usize;

    /// The largest buffer size charged at most `charge`.
    fn size_for_charge(&self, charge: usize) -> usize;

    /// Whether `ip` is a broadcast address here: the limited broadcast
    /// address, or (where the network has interfaces) an interface's
    /// directed broadcast address.
    fn is_broadcast(&self, ip: std::net::Ipv4Addr) -> bool {
        ip.is_broadcast()
    }
}

/// One datagram socket: readiness, non-blocking batches, options. The
/// state machine above never blocks on it and never names an errno.
pub trait DatagramSocket: Send + Sync + fmt::Debug {
    /// Binds to `addr`; port 0 asks for a port the network chooses (and
    /// keeps across disconnects).
    ///
    /// # Errors
    /// `EADDRINUSE`, `EADDRNOTAVAIL`, `EINVAL`, `EACCES` as `bind(2)`.
    fn bind(&self, addr: SocketAddr) -> io::Result<()>;

    /// Associates the socket with `peer`: sends without an address go
    /// there, and only its datagrams arrive.
    ///
    /// # Errors
    /// As `connect(2)`.
    fn connect(&self, peer: SocketAddr) -> io::Result<()>;

    /// Dissolves the association, keeping the bound port.
    ///
    /// # Errors
    /// As `connect(2)` with `AF_UNSPEC`.
    fn disconnect(&self) -> io::Result<()>;

    /// The bound address.
    ///
    /// # Errors
    /// When the socket is not bound.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The connected peer, if the socket is connected.
    fn peer_addr(&self) -> Option<SocketAddr>;

    /// Sends datagrams from the front of `batch` until one fails or the
    /// send buffer is full. Never blocks.
    fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome;

    /// Receives up to `max` queued datagrams into `slots`, replacing the
    /// contents of `landed` with where each went. Never blocks; nothing
    /// queued is `Ok` with nothing landed. An error met after some
    /// datagrams stays for the next call.
    ///
    /// # Errors
    /// An error (an ICMP report) queued before any datagram.
    fn try_receive_batch(
        &self,
        slots: &mut ReceiveSlots,
        max: usize,
        landed: &mut Vec<Received>,
    ) -> io::Result<()>;

    /// The network's cumulative count of datagrams it dropped for this
    /// socket because its receive queue was full, read now rather than
    /// with a received datagram; `None` where it cannot say.
    fn kernel_drops(&self) -> Option<u32> {
        None
    }

    /// Resolves when the send buffer has room.
    fn send_ready(&self) -> Ready<'_>;

    /// Resolves when a datagram or an error is queued.
    fn receive_ready(&self) -> Ready<'_>;

    /// Whether the send buffer has room now.
    fn writable_now(&self) -> bool;

    /// How many datagrams of `payload_len` bytes fit the room the socket
    /// promises when it reports writable.
    fn send_capacity(&self, payload_len: usize) -> usize;

    /// The unicast hop limit (TTL).
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn hop_limit(&self) -> io::Result<u8>;

    /// Sets the unicast hop limit.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_hop_limit(&self, value: u8) -> io::Result<()>;

    /// The receive buffer's size, in the units it is set in.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn receive_buffer_size(&self) -> io::Result<usize>;

    /// Sets the receive buffer's size; the network may clamp it.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_receive_buffer_size(&self, size: usize) -> io::Result<()>;

    /// The send buffer's size, in the units it is set in.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn send_buffer_size(&self) -> io::Result<usize>;

    /// Sets the send buffer's size; the network may clamp it.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_send_buffer_size(&self, size: usize) -> io::Result<()>;

    /// What the receive and send buffers are charged, as the network
    /// accounts them.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn buffer_charges(&self) -> io::Result<(usize, usize)>;

    /// The host memory the socket needs to take runs of datagrams the
    /// network coalesced into one buffer: the rest of one such buffer,
    /// held between receives when a receive asks for fewer datagrams than
    /// the buffer carries. 0 where the network never coalesces.
    fn coalescing_reserve(&self) -> usize {
        0
    }

    /// Lets the socket take coalesced runs of datagrams when its traffic
    /// has them, holding at most [`coalescing_reserve`](Self::coalescing_reserve)
    /// bytes between receives; the caller has set that memory aside.
    /// Datagrams come out one by one either way, each with its own size and
    /// source.
    fn allow_coalescing(&self) {}

    /// Whether the socket shares its port (`SO_REUSEADDR` and
    /// `SO_REUSEPORT`).
    ///
    /// # Errors
    /// As `getsockopt(2)`; `Unsupported` where the network has no such
    /// option.
    fn shared_port(&self) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Lets other sockets that share their port bind the same address and
    /// port; only before [`bind`](Self::bind).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_shared_port(&self, _shared: bool) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Joins a multicast group.
    ///
    /// # Errors
    /// As `setsockopt(2)` with `IP_ADD_MEMBERSHIP`, `IPV6_JOIN_GROUP` or
    /// `MCAST_JOIN_SOURCE_GROUP`: `EADDRINUSE` when already joined,
    /// `ENODEV` for an unknown interface, `ENOBUFS` past the group limit.
    fn join_group(&self, _membership: &Membership) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Leaves a multicast group.
    ///
    /// # Errors
    /// `EADDRNOTAVAIL` (or `ENOENT`) when not joined.
    fn leave_group(&self, _membership: &Membership) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// The hop limit of datagrams sent to groups.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn multicast_hop_limit(&self) -> io::Result<u8> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sets the hop limit of datagrams sent to groups.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_multicast_hop_limit(&self, _value: u8) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Whether datagrams sent to a group reach its members on this host.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn multicast_loopback(&self) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sets whether datagrams sent to a group reach its members on this
    /// host.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_multicast_loopback(&self, _enabled: bool) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sends datagrams to groups out of interface `index` (0: by route).
    ///
    /// # Errors
    /// `ENODEV` for an unknown interface.
    fn set_multicast_interface(&self, _index: u32) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Whether the socket may send to broadcast addresses.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    fn broadcast(&self) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sets whether the socket may send to broadcast addresses.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    fn set_broadcast(&self, _enabled: bool) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A multicast group membership: the group, the one source it admits (for
/// source-specific multicast), and the interface it is on (0: by route).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Membership {
    /// The group address.
    pub group: std::net::IpAddr,
    /// The only sender whose datagrams the membership admits, if any.
    pub source: Option<std::net::IpAddr>,
    /// The interface index; 0 lets the network choose.
    pub interface: u32,
}

/// Which IP family a socket was created for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET`.
    Ipv4,
    /// `AF_INET6`, always with `IPV6_V6ONLY`.
    Ipv6,
}

impl Family {
    /// The IP and UDP headers of one packet, in bytes: what a datagram
    /// costs on the wire beyond its payload.
    pub(crate) fn packet_overhead(self) -> usize {
        match self {
            Family::Ipv4 => 20 + 8,
            Family::Ipv6 => 40 + 8,
        }
    }

    /// Whether `addr` belongs to this family.
    pub fn matches(self, addr: &SocketAddr) -> bool {
        matches!(
            (self, addr),
            (Family::Ipv4, SocketAddr::V4(_)) | (Family::Ipv6, SocketAddr::V6(_))
        )
    }
}

/// One datagram handed to [`DatagramSocket::try_send_batch`].
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    /// `None` sends to the connected peer (`send`); `Some` is `sendto`.
    pub destination: Option<SocketAddr>,
    /// The payload.
    pub payload: &'a [u8],
}

/// What [`DatagramSocket::try_send_batch`] managed.
#[derive(Debug)]
pub struct SendOutcome {
    /// How many datagrams, from the front of the batch, the kernel took.
    pub sent: usize,
    /// Why it stopped before the end of the batch, unless it stopped because
    /// the socket's send buffer was full.
    pub error: Option<std::io::Error>,
    /// Whether it stopped because the socket's send buffer was full.
    pub buffer_full: bool,
}

/// Where one received datagram landed in a [`ReceiveSlots`].
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Which slot holds it.
    pub slot: usize,
    /// Where in the slot it starts: a slot may hold a run of datagrams the
    /// network coalesced, one after another.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
    /// Who sent it.
    pub source: SocketAddr,
}

/// Scratch space a batched receive reads into: `count` slots, each large
/// enough for any UDP datagram, so nothing is ever truncated.
///
/// The storage is a fresh mapping of zero pages: a page only becomes
/// resident once a datagram is written to it, so slots that only ever see
/// small datagrams cost a page each.
pub struct ReceiveSlots {
    storage: region::ZeroedRegion,
    count: usize,
    /// The kernel's drop counter of the socket last received from, if the
    /// last batch carried one (see [`kernel_drops`](Self::kernel_drops)).
    kernel_drops: Option<u32>,
    /// Where the datagrams of a batch landed: kept between receives so that
    /// its room is allocated once.
    landed: Vec<Received>,
}

impl fmt::Debug for ReceiveSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveSlots")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl ReceiveSlots {
    /// Bytes per slot: the largest UDP payload (IPv6's 65527), rounded up to
    /// a whole number of pages.
    pub(crate) const SLOT_SIZE: usize = 65_536;

    /// `count` empty slots (at least one).
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        Self {
            storage: region::ZeroedRegion::new(count * Self::SLOT_SIZE),
            count,
            kernel_drops: None,
            landed: Vec::new(),
        }
    }

    /// The list of where datagrams landed, empty, for a receive to fill;
    /// hand it back with [`put_landed`](Self::put_landed).
    pub(crate) fn take_landed(&mut self) -> Vec<Received> {
        let mut landed = std::mem::take(&mut self.landed);
        landed.clear();
        landed
    }

    /// Keeps `landed`'s room for the next receive.
    pub(crate) fn put_landed(&mut self, landed: Vec<Received>) {
        self.landed = landed;
    }

    /// Records the kernel's count of datagrams the socket dropped for a
    /// full receive queue, as a received datagram reported it.
    pub fn note_kernel_drops(&mut self, count: u32) {
        self.kernel_drops = Some(self.kernel_drops.map_or(count, |seen| seen.max(count)));
    }

    /// The highest drop count the last batch receive reported, and forgets
    /// it: the count is cumulative per socket, so the caller keeps the last
    /// one it saw.
    pub(crate) fn take_kernel_drops(&mut self) -> Option<u32> {
        self.kernel_drops.take()
    }

    /// How many datagrams one batch can take.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The bytes of `received`.
    pub fn datagram(&self, received: &Received) -> &[u8] {
        let start = received.slot * Self::SLOT_SIZE + received.offset;
        &self.storage.as_slice()[start..start + received.len]
    }

    /// The first `n` slots, as buffers to receive into.
    pub fn slots_mut(&mut self, n: usize) -> impl Iterator<Item = &mut [u8]> {
        self.storage
            .as_mut_slice()
            .chunks_exact_mut(Self::SLOT_SIZE)
            .take(n)
    }

    /// Slot `index`, as a buffer to receive or copy into.
    pub fn slot_mut(&mut self, index: usize) -> &mut [u8] {
        let start = index * Self::SLOT_SIZE;
        &mut self.storage.as_mut_slice()[start..start + Self::SLOT_SIZE]
    }
}
