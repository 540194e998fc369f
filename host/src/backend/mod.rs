//! The seam between the WIT state machine and the operating system.
//!
//! Everything above this module speaks in readiness and batches: "is the
//! socket writable", "send these datagrams without blocking", "receive up to
//! N datagrams that are already queued". Everything OS-specific (socket
//! creation flags, the Linux port-pinning workaround, option syscalls) lives
//! below it, in [`tokio`].

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
}
