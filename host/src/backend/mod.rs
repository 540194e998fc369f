//! The seam between the WIT state machine and the operating system.
//!
//! Everything above this module speaks in readiness and batches: "is the
//! socket writable", "send these datagrams without blocking", "receive up to
//! N datagrams that are already queued". Everything OS-specific (socket
//! creation flags, the Linux port-pinning workaround, option syscalls) lives
//! below it, in [`tokio`].

#[cfg(target_os = "linux")]
mod mmsg;
pub(crate) mod tokio;

use std::net::SocketAddr;

pub(crate) use self::tokio::DatagramSocket;

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
pub(crate) struct Transmit<'a> {
    /// `None` sends to the connected peer (`send`); `Some` is `sendto`.
    pub destination: Option<SocketAddr>,
    /// The payload.
    pub payload: &'a [u8],
}

/// What [`DatagramSocket::try_send_batch`] managed.
#[derive(Debug)]
pub(crate) struct SendOutcome {
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
pub(crate) struct Received {
    /// Which slot holds it.
    pub slot: usize,
    /// Its length in bytes.
    pub len: usize,
    /// Who sent it.
    pub source: SocketAddr,
}

/// Scratch space a batched receive reads into: `count` slots, each large
/// enough for any UDP datagram, so nothing is ever truncated.
///
/// The storage is zero-allocated, which the allocator serves from fresh
/// pages; a page only becomes resident once a datagram is written to it, so
/// slots that only ever see small datagrams cost a page each.
pub(crate) struct ReceiveSlots {
    storage: Vec<u8>,
    count: usize,
    /// The kernel's drop counter of the socket last received from, if the
    /// last batch carried one (see [`kernel_drops`](Self::kernel_drops)).
    kernel_drops: Option<u32>,
}

impl ReceiveSlots {
    /// Bytes per slot: the largest UDP payload (IPv6's 65527), rounded up to
    /// a whole number of pages.
    pub(crate) const SLOT_SIZE: usize = 65_536;

    /// `count` empty slots (at least one).
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        Self {
            storage: vec![0; count * Self::SLOT_SIZE],
            count,
            kernel_drops: None,
        }
    }

    /// Records the kernel's count of datagrams the socket dropped for a
    /// full receive queue, as a received datagram reported it.
    pub(crate) fn note_kernel_drops(&mut self, count: u32) {
        self.kernel_drops = Some(self.kernel_drops.map_or(count, |seen| seen.max(count)));
    }

    /// The highest drop count the last batch receive reported, and forgets
    /// it: the count is cumulative per socket, so the caller keeps the last
    /// one it saw.
    pub(crate) fn take_kernel_drops(&mut self) -> Option<u32> {
        self.kernel_drops.take()
    }

    /// How many datagrams one batch can take.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The bytes of `received`.
    pub(crate) fn datagram(&self, received: &Received) -> &[u8] {
        let start = received.slot * Self::SLOT_SIZE;
        &self.storage[start..start + received.len]
    }

    /// The first `n` slots, as buffers to receive into.
    pub(crate) fn slots_mut(&mut self, n: usize) -> impl Iterator<Item = &mut [u8]> {
        self.storage.chunks_exact_mut(Self::SLOT_SIZE).take(n)
    }
}
