//! The `udp-socket` state machine, free of bindgen and OS types.
//!
//! ```text
//!  create ──> Unbound ──start-bind──> BindStarted ──finish-bind──> Bound
//!                 ^  (a failed start-bind                           │  ^
//!                 └── leaves it Unbound)                      stream(..)
//!                                                                   v  │
//!                                               Bound { association, streams alive }
//! ```
//!
//! Invariants:
//! - the OS socket is bound exactly when the state is `BindStarted` or
//!   `Bound` (the bind syscall runs in `start-bind`, which the WIT allows);
//! - the OS socket is connected exactly when `remote` is `Some`;
//! - `streams_lease` has a strong count above 1 exactly while a stream of the
//!   latest `stream` call is alive; pollables do not hold it.

use std::io;
use std::net::{SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{DatagramSocket, Family};
use crate::bindings::ErrorCode;
use crate::ctx::{SocketSlot, StoreShared, UdpStats};
use crate::error::{Operation, SocketError, SocketResult, error_code_from_io};
use crate::policy::{Denial, SocketUse, UdpPolicy};

/// What a socket and its streams share: the OS socket and an error the
/// kernel reported that no guest call has returned yet.
pub(crate) struct SocketCore {
    pub io: DatagramSocket,
    pub family: Family,
    pub shared: Arc<StoreShared>,
    /// An asynchronous network error (an ICMP report) the kernel handed over
    /// while the provider was busy returning other results. The kernel
    /// reports each such error once, so it waits here for the next `send` or
    /// `receive` on any stream of this socket.
    pending_error: Mutex<Option<io::Error>>,
    /// Set when a send found the kernel's send buffer full, cleared once the
    /// kernel reports room again. While it is clear, `check-send` permits
    /// without asking the kernel: a send that then finds the buffer full
    /// just sends fewer, which the WIT allows.
    pub send_buffer_full: AtomicBool,
    /// `SO_SNDBUF` as last read, or 0 when it must be read again.
    send_buffer_size: AtomicUsize,
    /// The largest payload of the last `send`: what permits are sized for.
    pub last_payload_len: AtomicUsize,
    /// What the guest set `SO_RCVBUF` and `SO_SNDBUF` to, as counted against
    /// the store's buffer budget (0 while at the system default).
    receive_buffer_held: AtomicUsize,
    send_buffer_held: AtomicUsize,
    _slot: SocketSlot,
}

impl Drop for SocketCore {
    fn drop(&mut self) {
        let held = self.receive_buffer_held.load(Ordering::Relaxed)
            + self.send_buffer_held.load(Ordering::Relaxed);
        self.shared.buffers.release(held);
    }
}

impl SocketCore {
    /// Remembers `error` for the next `send` or `receive`.
    pub fn defer_error(&self, error: io::Error) {
        let mut pending = self
            .pending_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.get_or_insert(error);
    }

    /// Takes the error deferred by [`defer_error`](Self::defer_error), if any.
    pub fn take_deferred_error(&self) -> Option<io::Error> {
        self.pending_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// `SO_SNDBUF`, read from the kernel once and remembered until the guest
    /// changes it.
    pub fn send_buffer_size(&self) -> usize {
        match self.send_buffer_size.load(Ordering::Relaxed) {
            0 => {
                // Linux's default; only used if the kernel will not say.
                let size = self.io.send_buffer_size().unwrap_or(212_992);
                self.send_buffer_size.store(size, Ordering::Relaxed);
                size
            }
            size => size,
        }
    }

    /// Whether an error is waiting to be reported.
    pub fn has_deferred_error(&self) -> bool {
        self.pending_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindState {
    Unbound,
    BindStarted,
    Bound,
}

/// The host side of a `udp-socket` resource.
pub struct UdpSocket {
    core: Arc<SocketCore>,
    state: BindState,
    /// The peer of the current association, set by `stream(some(..))`.
    remote: Option<SocketAddr>,
    /// Shared with the streams of the latest `stream` call; see the module
    /// invariants.
    streams_lease: Arc<()>,
}

/// What [`UdpSocket::stream`] hands to the two new streams.
pub(crate) struct StreamParts {
    pub core: Arc<SocketCore>,
    pub remote: Option<SocketAddr>,
    pub lease: Arc<()>,
}

impl UdpSocket {
    pub(crate) fn new(
        family: Family,
        shared: Arc<StoreShared>,
        slot: SocketSlot,
    ) -> io::Result<Self> {
        let io = DatagramSocket::new(family)?;
        Ok(Self {
            core: Arc::new(SocketCore {
                io,
                family,
                shared,
                pending_error: Mutex::new(None),
                send_buffer_full: AtomicBool::new(false),
                send_buffer_size: AtomicUsize::new(0),
                last_payload_len: AtomicUsize::new(0),
                receive_buffer_held: AtomicUsize::new(0),
                send_buffer_held: AtomicUsize::new(0),
                _slot: slot,
            }),
            state: BindState::Unbound,
            remote: None,
            streams_lease: Arc::new(()),
        })
    }

    /// The family the socket was created with.
    pub fn family(&self) -> Family {
        self.core.family
    }

    /// `start-bind`, before the policy is asked: the checks that need no
    /// policy.
    pub(crate) fn check_bind(&self, local: &SocketAddr) -> SocketResult<()> {
        match self.state {
            BindState::Unbound => {}
            // network.wit: "concurrency-conflict: This operation is
            // incompatible with another asynchronous operation that is already
            // in progress."
            BindState::BindStarted => return Err(ErrorCode::ConcurrencyConflict.into()),
            // WIT: "invalid-state: The socket is already bound."
            BindState::Bound => return Err(ErrorCode::InvalidState.into()),
        }
        // WIT: "invalid-argument: The local-address has the wrong address family."
        validate_family(self.core.family, local)
    }

    /// `start-bind`, once the policy allowed it: binds.
    pub(crate) fn start_bind(&mut self, local: Approved) -> SocketResult<()> {
        let local = local.address(SocketUse::Bind);
        self.check_bind(&local)?;
        self.core
            .io
            .bind(local)
            .map_err(|e| error_code_from_io(&e, Operation::Bind))?;
        self.state = BindState::BindStarted;
        Ok(())
    }

    /// `finish-bind`.
    pub(crate) fn finish_bind(&mut self) -> SocketResult<()> {
        match self.state {
            BindState::BindStarted => {
                self.state = BindState::Bound;
                Ok(())
            }
            // WIT: "not-in-progress: A bind operation is not in progress."
            BindState::Unbound | BindState::Bound => Err(ErrorCode::NotInProgress.into()),
        }
    }

    /// `stream`, before the policy is asked about the remote address: the
    /// checks that need no policy.
    pub(crate) fn check_stream(&self, remote: Option<&SocketAddr>) -> SocketResult<()> {
        if Arc::strong_count(&self.streams_lease) > 1 {
            // WIT: "Implementations may trap if the streams returned by a
            // previous invocation haven't been dropped yet before calling
            // `stream` again." We do: two live pairs on one socket would steal
            // each other's datagrams.
            return Err(SocketError::trap(
                "udp-socket.stream called while streams from an earlier call are still alive; drop them first",
            ));
        }
        // WIT: "invalid-state: The socket is not bound."
        if self.state != BindState::Bound {
            return Err(ErrorCode::InvalidState.into());
        }
        match remote {
            Some(remote) => validate_remote(self.core.family, remote),
            None => Ok(()),
        }
    }

    /// `stream`, once the policy allowed the remote address (if any):
    /// (re)sets the association and hands out the parts of a new stream
    /// pair.
    pub(crate) fn stream(&mut self, remote: Option<Approved>) -> SocketResult<StreamParts> {
        let remote = remote.map(|remote| remote.address(SocketUse::Connect));
        self.check_stream(remote.as_ref())?;
        // WIT: "if (was previously connected) { connect(s, AF_UNSPEC) }"
        if self.remote.is_some() {
            self.core
                .io
                .disconnect()
                .map_err(|e| error_code_from_io(&e, Operation::Connect))?;
            self.remote = None;
        }
        if let Some(remote) = remote {
            self.core
                .io
                .connect(remote)
                .map_err(|e| error_code_from_io(&e, Operation::Connect))?;
            self.remote = Some(remote);
        }
        self.streams_lease = Arc::new(());
        Ok(StreamParts {
            core: self.core.clone(),
            remote: self.remote,
            lease: self.streams_lease.clone(),
        })
    }

    /// `local-address`.
    pub(crate) fn local_address(&self) -> SocketResult<SocketAddr> {
        // WIT: "WASI is stricter and requires local-address to return
        // invalid-state when the socket hasn't been bound yet." The bind is
        // not complete until finish-bind.
        if self.state != BindState::Bound {
            return Err(ErrorCode::InvalidState.into());
        }
        self.core
            .io
            .local_addr()
            .map_err(|e| error_code_from_io(&e, Operation::Option).into())
    }

    /// `remote-address`.
    pub(crate) fn remote_address(&self) -> SocketResult<SocketAddr> {
        // WIT: "invalid-state: The socket is not streaming to a specific
        // remote address. (ENOTCONN)"
        self.remote.ok_or(ErrorCode::InvalidState.into())
    }

    /// `unicast-hop-limit`.
    pub(crate) fn hop_limit(&self) -> SocketResult<u8> {
        let value = option_result(self.core.io.hop_limit(self.core.family))?;
        Ok(u8::try_from(value).unwrap_or(u8::MAX))
    }

    /// `set-unicast-hop-limit`.
    pub(crate) fn set_hop_limit(&self, value: u8) -> SocketResult<()> {
        // WIT: "invalid-argument: (set) The TTL value must be 1 or higher."
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        option_result(self.core.io.set_hop_limit(self.core.family, value.into()))
    }

    /// `receive-buffer-size`.
    pub(crate) fn receive_buffer_size(&self) -> SocketResult<u64> {
        option_result(self.core.io.receive_buffer_size()).map(|n| n as u64)
    }

    /// `set-receive-buffer-size`.
    pub(crate) fn set_receive_buffer_size(&self, value: u64) -> SocketResult<()> {
        // WIT: "If the provided value is 0, an invalid-argument error is
        // returned. Any other value will never cause an error, but it might be
        // silently clamped and/or rounded."
        let size = self.budgeted(&self.core.receive_buffer_held, buffer_size_argument(value)?);
        option_result(self.core.io.set_receive_buffer_size(size))
    }

    /// `wanted` capped by the per-socket and per-store buffer limits, with
    /// the socket's hold on the store's budget (`held`) updated to match.
    fn budgeted(&self, held: &AtomicUsize, wanted: usize) -> usize {
        let buffers = &self.core.shared.buffers;
        let granted = buffers.resize(held.load(Ordering::Relaxed), wanted);
        held.store(granted, Ordering::Relaxed);
        granted
    }

    /// `send-buffer-size`.
    pub(crate) fn send_buffer_size(&self) -> SocketResult<u64> {
        option_result(self.core.io.send_buffer_size()).map(|n| n as u64)
    }

    /// `set-send-buffer-size`.
    pub(crate) fn set_send_buffer_size(&self, value: u64) -> SocketResult<()> {
        let size = self.budgeted(&self.core.send_buffer_held, buffer_size_argument(value)?);
        // The kernel clamps and doubles what it is given: read it back at
        // the next check-send.
        self.core.send_buffer_size.store(0, Ordering::Relaxed);
        option_result(self.core.io.set_send_buffer_size(size))
    }
}

fn option_result<T>(result: io::Result<T>) -> SocketResult<T> {
    result.map_err(|e| error_code_from_io(&e, Operation::Option).into())
}

fn buffer_size_argument(value: u64) -> SocketResult<usize> {
    if value == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// Proof that the policy allowed one use of one address: the only way to
/// reach the bind and connect syscalls.
pub(crate) struct Approved {
    socket_use: SocketUse,
    addr: SocketAddr,
}

impl Approved {
    /// The address, for the use it was approved for.
    fn address(self, socket_use: SocketUse) -> SocketAddr {
        debug_assert_eq!(self.socket_use, socket_use, "approved for another use");
        self.addr
    }
}

/// Asks `policy`, counting and logging a refusal.
pub(crate) fn check_policy(
    policy: &dyn UdpPolicy,
    stats: &UdpStats,
    socket_use: SocketUse,
    addr: SocketAddr,
) -> SocketResult<()> {
    policy
        .check(socket_use, addr)
        .map_err(|denial| refused(stats, &denial))
}

/// Asks `policy`, which may wait (binds and connects), counting and logging
/// a refusal.
pub(crate) async fn approve(
    policy: &dyn UdpPolicy,
    stats: &UdpStats,
    socket_use: SocketUse,
    addr: SocketAddr,
) -> SocketResult<Approved> {
    match policy.check_async(socket_use, addr).await {
        Ok(()) => Ok(Approved { socket_use, addr }),
        Err(denial) => Err(refused(stats, &denial)),
    }
}

fn refused(stats: &UdpStats, denial: &Denial) -> SocketError {
    UdpStats::add(&stats.denied, 1);
    tracing::info!(target: "wasi_udp_host::policy", "denied: {denial}");
    ErrorCode::AccessDenied.into()
}

/// The family check shared by bind, stream and send.
fn validate_family(family: Family, addr: &SocketAddr) -> SocketResult<()> {
    if !family.matches(addr) {
        return Err(ErrorCode::InvalidArgument.into());
    }
    if let SocketAddr::V6(v6) = addr {
        // An IPv4-mapped address would reach IPv4 through an IPv6 socket,
        // which V6ONLY sockets cannot do; the WIT treats it as the wrong
        // family.
        if is_ipv4_mapped(v6) {
            return Err(ErrorCode::InvalidArgument.into());
        }
    }
    Ok(())
}

/// Checks a remote address given to `stream` or `send`:
/// WIT: "invalid-argument: The remote-address has the wrong address family.",
/// "... is set to INADDR_ANY (0.0.0.0 / ::).", "The port in remote-address is
/// set to 0."
pub(crate) fn validate_remote(family: Family, remote: &SocketAddr) -> SocketResult<()> {
    validate_family(family, remote)?;
    if remote.ip().is_unspecified() || remote.port() == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(())
}

fn is_ipv4_mapped(addr: &SocketAddrV6) -> bool {
    addr.ip().to_ipv4_mapped().is_some()
}
