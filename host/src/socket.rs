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
//! - the OS socket is connected exactly when `remote` is `Some`, and then
//!   the policy allowed both connecting and sending to it;
//! - every address in `reply_peers` is one the policy allowed this socket
//!   to send to (a connected peer, or a destination of a `send`);
//! - `streams_lease` has a strong count above 1 exactly while a stream of the
//!   latest `stream` call is alive; pollables do not hold it.
//!
//! Every policy and limit check happens here, before the syscall it guards.

use std::io;
use std::net::{SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::{DatagramSocket, Family};
use crate::ctx::{SlotRefused, SocketSlot, StoreShared, UdpStats};
use crate::error::{Code, Operation, UdpError, UdpResult, code_from_io};
use crate::peers::ReplyPeers;
use crate::policy::{Denial, Rule, SocketUse};
use crate::report::{DropCause, Limit, Topic};

mod extensions;

/// What a socket and its streams share: the OS socket and an error the
/// kernel reported that no guest call has returned yet.
pub(crate) struct SocketCore {
    pub(crate) io: Box<dyn DatagramSocket>,
    pub(crate) family: Family,
    pub(crate) shared: Arc<StoreShared>,
    /// An asynchronous network error (an ICMP report) the kernel handed over
    /// while the provider was busy returning other results. The kernel
    /// reports each such error once, so it waits here for the next `send` or
    /// `receive` on any stream of this socket.
    pending_error: Mutex<Option<io::Error>>,
    /// Whether `pending_error` holds one: every `send` and `receive` asks,
    /// and almost always the answer is no, which this gives without the
    /// lock. Set and cleared under the lock.
    error_pending: AtomicBool,
    /// Set when a send found the kernel's send buffer full, cleared once the
    /// kernel reports room again. While it is clear, `check-send` permits
    /// without asking the kernel: a send that then finds the buffer full
    /// just sends fewer, which the WIT allows.
    pub(crate) send_buffer_full: AtomicBool,
    /// The largest payload of the last `send`: what permits are sized for.
    pub(crate) last_payload_len: AtomicUsize,
    /// What this socket's receive and send buffers are charged against the
    /// store's buffer budget: their sizes as the kernel accounts them, and
    /// `coalescing_reserve`.
    buffers_charged: AtomicUsize,
    /// Host memory set aside for the rest of a coalesced buffer (0 when the
    /// socket receives datagram by datagram).
    coalescing_reserve: usize,
    /// The kernel's count of datagrams this socket dropped for a full
    /// receive queue, as last reported.
    pub(crate) kernel_drops_seen: std::sync::atomic::AtomicU32,
    /// Peers whose datagrams are replies: see the module invariants.
    reply_peers: Mutex<ReplyPeers>,
    /// Whether the guest enabled broadcast (`wasi-udp:extensions`): only
    /// then can a send reach an interface's broadcast address, so only then
    /// are sends checked against the interfaces' broadcast addresses.
    pub(crate) broadcast_enabled: AtomicBool,
    /// This socket's counters.
    pub(crate) stats: crate::stats::SocketStats,
    /// Where this socket's log lines belong, with the guest's handle; only
    /// made when something listens for it.
    pub(crate) span: Option<Box<tracing::Span>>,
    _slot: SocketSlot,
}

impl crate::stats::CountedSocket for SocketCore {
    fn stats(&self) -> &crate::stats::SocketStats {
        &self.stats
    }

    /// Asked of the network: a socket not yet bound reports port 0.
    fn addresses(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let local = self.io.local_addr().ok().filter(|addr| addr.port() != 0);
        (local, self.io.peer_addr())
    }
}

impl Drop for SocketCore {
    fn drop(&mut self) {
        // Single-datagram receives read the kernel's drop counter only now
        // and then; what it counted since is said now.
        if let Some(total) = self.io.kernel_drops() {
            self.report_kernel_drops(total);
        }
        self.shared
            .buffers
            .release(self.buffers_charged.load(Ordering::Relaxed));
        let last = self
            .stats
            .snapshot(false, crate::stats::CountedSocket::addresses(self));
        self.shared.sockets.close(self.stats.serial, last);
    }
}

impl SocketCore {
    /// Counts what the kernel dropped since the socket last said, from its
    /// cumulative count `total`.
    pub(crate) fn report_kernel_drops(&self, total: u32) {
        let seen = self.kernel_drops_seen.swap(total, Ordering::Relaxed);
        let new = u64::from(total.wrapping_sub(seen));
        if new == 0 {
            return;
        }
        let shared = &self.shared;
        UdpStats::add(&shared.stats.dropped_kernel_queue, new);
        self.stats.dropped(DropCause::KernelQueue, new);
        shared.reporter.report(
            Topic::Dropped(DropCause::KernelQueue),
            self.io.local_addr().ok(),
            new,
            || {
                let local = self
                    .io
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let size = self.io.receive_buffer_size().unwrap_or(0);
                format!(
                    "the kernel dropped {new} datagrams for {local}: its receive buffer \
                     ({size} bytes) was full; the guest reads too slowly, or can raise it with \
                     set-receive-buffer-size (up to max-socket-buffer)"
                )
            },
        );
    }

    /// Remembers `error` for the next `send` or `receive`.
    pub(crate) fn defer_error(&self, error: io::Error) {
        let mut pending = self
            .pending_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.get_or_insert(error);
        self.error_pending.store(true, Ordering::Release);
    }

    /// Takes the error deferred by [`defer_error`](Self::defer_error), if any.
    pub(crate) fn take_deferred_error(&self) -> Option<io::Error> {
        if !self.error_pending.load(Ordering::Acquire) {
            return None;
        }
        let mut pending = self
            .pending_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.error_pending.store(false, Ordering::Release);
        pending.take()
    }

    /// How many sockets the store holds.
    pub(crate) fn live_sockets(&self) -> usize {
        self._slot.live()
    }

    /// Whether an error is waiting to be reported.
    pub(crate) fn has_deferred_error(&self) -> bool {
        self.error_pending.load(Ordering::Acquire)
    }

    /// The peers this socket may hear replies from.
    pub(crate) fn reply_peers(&self) -> MutexGuard<'_, ReplyPeers> {
        self.reply_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts and reports a refused operation; the guest gets
    /// `access-denied`.
    pub(crate) fn refuse(
        &self,
        socket_use: SocketUse,
        addr: SocketAddr,
        denial: &Denial,
    ) -> UdpError {
        self.stats.denied();
        refuse(&self.shared, socket_use, addr, denial)
    }

    /// Enters this socket's span, if anything listens for it. The entered
    /// span is owned, so that the caller stays free to borrow itself
    /// mutably; nothing is cloned when no one listens.
    pub(crate) fn enter_span(&self) -> Option<tracing::span::EnteredSpan> {
        self.span.as_deref().cloned().map(tracing::Span::entered)
    }

    /// Counts `error` against this socket, if it is an error code.
    pub(crate) fn note(&self, error: UdpError) -> UdpError {
        if let UdpError::Code(code) = &error {
            self.stats.error(*code);
            UdpStats::add(&self.shared.stats.errors, 1);
        }
        error
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
    /// Whether the guest asked to share the port (`wasi-udp:extensions`);
    /// a bind then needs `share` as well as `bind`.
    shared_port: bool,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("family", &self.core.family)
            .field("state", &self.state)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// What [`UdpSocket::stream`] hands to the two new streams.
pub(crate) struct StreamParts {
    pub(crate) core: Arc<SocketCore>,
    pub(crate) remote: Option<ConnectedPeer>,
    pub(crate) lease: Arc<()>,
}

/// The peer of a connected stream pair, and what the policy said about
/// hearing from it (decided once, at `stream`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectedPeer {
    pub(crate) addr: SocketAddr,
    /// A deny rule refuses datagrams from the peer: each is dropped.
    pub(crate) forbidden: bool,
}

impl UdpSocket {
    /// A new, unbound socket, or `new-socket-limit` when the store or the
    /// process has no room for one.
    pub(crate) fn create(
        family: Family,
        shared: &Arc<StoreShared>,
        live: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> UdpResult<Self> {
        // udp-create-socket.wit: "new-socket-limit: The new socket resource
        // could not be created because of a system limit." The store's and
        // the process's limits are checked before the syscall.
        let slot = SocketSlot::claim(live, shared).map_err(|refused| {
            let limit = match refused {
                SlotRefused::Store => Limit::MaxSockets,
                SlotRefused::Budget => Limit::Descriptors,
            };
            socket_limit(shared, limit, || match refused {
                SlotRefused::Store => format!(
                    "the guest holds {} sockets, its max-sockets",
                    shared.limits.max_sockets
                ),
                SlotRefused::Budget => {
                    let budget = shared.descriptors.budget();
                    format!(
                        "the process's socket budget is in use by all its stores ({} sockets: {})",
                        budget.capacity(),
                        budget.origin()
                    )
                }
            })
        })?;
        let io = shared.network.socket(family).map_err(|error| {
            let code = code_from_io(&error, Operation::Create);
            if code == Code::NewSocketLimit {
                return socket_limit(shared, Limit::Descriptors, || {
                    format!("the process is out of file descriptors ({error})")
                });
            }
            UdpError::from(code)
        })?;
        let charged = charge_new_socket(io.as_ref(), shared, slot.live())?;
        let coalescing_reserve = reserve_for_coalescing(io.as_ref(), shared, slot.live());
        let stats = crate::stats::SocketStats::new(shared.sockets.next_serial(), family);
        let span = tracing::debug_span!("udp_socket", handle = tracing::field::Empty);
        let span = (!span.is_disabled()).then(|| Box::new(span));
        let core = Arc::new(SocketCore {
            io,
            family,
            shared: shared.clone(),
            pending_error: Mutex::new(None),
            error_pending: AtomicBool::new(false),
            send_buffer_full: AtomicBool::new(false),
            last_payload_len: AtomicUsize::new(0),
            buffers_charged: AtomicUsize::new(charged + coalescing_reserve),
            coalescing_reserve,
            kernel_drops_seen: std::sync::atomic::AtomicU32::new(0),
            reply_peers: Mutex::new(ReplyPeers::new(shared.limits.max_reply_peers)),
            broadcast_enabled: AtomicBool::new(false),
            stats,
            span,
            _slot: slot,
        });
        let registered: std::sync::Weak<dyn crate::stats::CountedSocket> =
            Arc::downgrade(&core) as std::sync::Weak<SocketCore>;
        shared.sockets.register(core.stats.serial, registered);
        Ok(Self {
            core,
            state: BindState::Unbound,
            remote: None,
            streams_lease: Arc::new(()),
            shared_port: false,
        })
    }

    /// The family the socket was created with.
    pub fn family(&self) -> Family {
        self.core.family
    }

    /// Records the guest's handle for the socket, for its counters and its
    /// log lines.
    pub(crate) fn set_handle(&self, handle: u32) {
        self.core.stats.handle.store(handle, Ordering::Relaxed);
        if let Some(span) = &self.core.span {
            span.record("handle", handle);
        }
    }

    /// Counts `error` against this socket, if it is an error code.
    pub(crate) fn note(&self, error: UdpError) -> UdpError {
        self.core.note(error)
    }

    /// `start-bind`, first step: the checks that need no policy, then the
    /// policy question to ask (which may wait).
    pub(crate) fn prepare_bind(&self, local: SocketAddr) -> UdpResult<PolicyQuestion> {
        self.check_bind(&local)?;
        Ok(PolicyQuestion {
            shared: self.core.shared.clone(),
            addr: local,
            shared_port: self.shared_port,
        })
    }

    fn check_bind(&self, local: &SocketAddr) -> UdpResult<()> {
        match self.state {
            BindState::Unbound => {}
            // network.wit: "concurrency-conflict: This operation is
            // incompatible with another asynchronous operation that is already
            // in progress."
            BindState::BindStarted => return Err(Code::ConcurrencyConflict.into()),
            // WIT: "invalid-state: The socket is already bound."
            BindState::Bound => return Err(Code::InvalidState.into()),
        }
        // WIT: "invalid-argument: The local-address has the wrong address family."
        validate_family(self.core.family, local)
    }

    /// `start-bind`, once the policy allowed it: binds.
    pub(crate) fn start_bind(&mut self, local: ApprovedBind) -> UdpResult<()> {
        self.check_bind(&local.0)?;
        self.core
            .io
            .bind(local.0)
            .map_err(|e| code_from_io(&e, Operation::Bind))?;
        self.state = BindState::BindStarted;
        Ok(())
    }

    /// `finish-bind`.
    pub(crate) fn finish_bind(&mut self) -> UdpResult<()> {
        match self.state {
            BindState::BindStarted => {
                self.state = BindState::Bound;
                Ok(())
            }
            // WIT: "not-in-progress: A bind operation is not in progress."
            BindState::Unbound | BindState::Bound => Err(Code::NotInProgress.into()),
        }
    }

    /// `stream`, first step: the checks that need no policy, then the policy
    /// question about the remote address, if there is one.
    pub(crate) fn prepare_stream(
        &self,
        remote: Option<SocketAddr>,
    ) -> UdpResult<Option<PolicyQuestion>> {
        self.check_stream(remote.as_ref())?;
        Ok(remote.map(|addr| PolicyQuestion {
            shared: self.core.shared.clone(),
            addr,
            shared_port: false,
        }))
    }

    fn check_stream(&self, remote: Option<&SocketAddr>) -> UdpResult<()> {
        if Arc::strong_count(&self.streams_lease) > 1 {
            // WIT: "Implementations may trap if the streams returned by a
            // previous invocation haven't been dropped yet before calling
            // `stream` again." We do: two live pairs on one socket would steal
            // each other's datagrams.
            return Err(UdpError::trap(
                "udp-socket.stream called while streams from an earlier call are still alive; drop them first",
            ));
        }
        // WIT: "invalid-state: The socket is not bound."
        if self.state != BindState::Bound {
            return Err(Code::InvalidState.into());
        }
        match remote {
            Some(remote) => validate_remote(self.core.family, remote),
            None => Ok(()),
        }
    }

    /// `stream`, once the policy allowed the remote address (if any):
    /// (re)sets the association and hands out the parts of a new stream
    /// pair.
    pub(crate) fn stream(&mut self, remote: Option<ApprovedPeer>) -> UdpResult<StreamParts> {
        self.check_stream(remote.as_ref().map(|peer| &peer.peer.addr))?;
        // WIT: "if (was previously connected) { connect(s, AF_UNSPEC) }"
        if self.remote.is_some() {
            self.core
                .io
                .disconnect()
                .map_err(|e| code_from_io(&e, Operation::Connect))?;
            self.remote = None;
        }
        let mut connected = None;
        if let Some(ApprovedPeer { peer }) = remote {
            self.core
                .io
                .connect(peer.addr)
                .map_err(|e| code_from_io(&e, Operation::Connect))?;
            self.remote = Some(peer.addr);
            self.core.reply_peers().note(peer.addr);
            connected = Some(peer);
        }
        self.streams_lease = Arc::new(());
        Ok(StreamParts {
            core: self.core.clone(),
            remote: connected,
            lease: self.streams_lease.clone(),
        })
    }

    /// `local-address`.
    pub(crate) fn local_address(&self) -> UdpResult<SocketAddr> {
        // WIT: "WASI is stricter and requires local-address to return
        // invalid-state when the socket hasn't been bound yet." The bind is
        // not complete until finish-bind.
        if self.state != BindState::Bound {
            return Err(Code::InvalidState.into());
        }
        self.core
            .io
            .local_addr()
            .map_err(|e| code_from_io(&e, Operation::Option).into())
    }

    /// `remote-address`.
    pub(crate) fn remote_address(&self) -> UdpResult<SocketAddr> {
        // WIT: "invalid-state: The socket is not streaming to a specific
        // remote address. (ENOTCONN)"
        self.remote.ok_or(Code::InvalidState.into())
    }

    /// `unicast-hop-limit`.
    pub(crate) fn hop_limit(&self) -> UdpResult<u8> {
        option_result(self.core.io.hop_limit())
    }

    /// `set-unicast-hop-limit`.
    pub(crate) fn set_hop_limit(&self, value: u8) -> UdpResult<()> {
        // WIT: "invalid-argument: (set) The TTL value must be 1 or higher."
        if value == 0 {
            return Err(Code::InvalidArgument.into());
        }
        option_result(self.core.io.set_hop_limit(value))
    }

    /// `receive-buffer-size`: in the units the guest sets it in (the kernel
    /// doubles what it is given on Linux; the backend reports it undoubled).
    pub(crate) fn receive_buffer_size(&self) -> UdpResult<u64> {
        option_result(self.core.io.receive_buffer_size()).map(|n| n as u64)
    }

    /// `set-receive-buffer-size`.
    pub(crate) fn set_receive_buffer_size(&self, value: u64) -> UdpResult<()> {
        // WIT: "If the provided value is 0, an invalid-argument error is
        // returned. Any other value will never cause an error, but it might be
        // silently clamped and/or rounded."
        self.resize_buffer(Buffer::Receive, value)
    }

    /// `send-buffer-size`, in the units the guest sets it in.
    pub(crate) fn send_buffer_size(&self) -> UdpResult<u64> {
        option_result(self.core.io.send_buffer_size()).map(|n| n as u64)
    }

    /// `set-send-buffer-size`.
    pub(crate) fn set_send_buffer_size(&self, value: u64) -> UdpResult<()> {
        self.resize_buffer(Buffer::Send, value)
    }

    /// Sets one buffer to `value`, capped by `max_socket_buffer` and by what
    /// the store's buffer budget has left. With nothing left to grow into,
    /// the buffer keeps its size (asking the kernel for less than the guest
    /// had would be a shrink nobody asked for).
    fn resize_buffer(&self, buffer: Buffer, value: u64) -> UdpResult<()> {
        let value = buffer_size_argument(value)?;
        let shared = &self.core.shared;
        let io = &self.core.io;
        let mut wanted = value;
        if wanted > shared.limits.max_socket_buffer {
            wanted = shared.limits.max_socket_buffer;
            report_capped(shared, Limit::MaxSocketBuffer, value, wanted);
        }
        let (receive, send) = option_result(io.buffer_charges())?;
        let current = match buffer {
            Buffer::Receive => receive,
            Buffer::Send => send,
        };
        let affordable = current + growth_room(shared, self.core.live_sockets());
        let network = &shared.network;
        if network.charge_for_size(wanted) > affordable {
            let capped = network.size_for_charge(affordable);
            report_capped(shared, Limit::MaxStoreBuffers, value, capped);
            if capped <= network.size_for_charge(current) {
                return Ok(());
            }
            wanted = capped;
        }
        option_result(match buffer {
            Buffer::Receive => io.set_receive_buffer_size(wanted),
            Buffer::Send => io.set_send_buffer_size(wanted),
        })?;
        let (receive, send) = option_result(io.buffer_charges())?;
        let charged = receive + send + self.core.coalescing_reserve;
        let before = self.core.buffers_charged.swap(charged, Ordering::Relaxed);
        shared.buffers.replace(before, charged);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Buffer {
    Receive,
    Send,
}

/// Counts and reports a socket refused by `limit`, as `new-socket-limit`.
fn socket_limit(shared: &StoreShared, limit: Limit, why: impl FnOnce() -> String) -> UdpError {
    UdpStats::add(&shared.stats.socket_limit_hits, 1);
    let hints = shared.reporter.hints();
    shared.reporter.report(Topic::Limit(limit), None, 1, || {
        format!(
            "{}: create-udp-socket returns new-socket-limit; {}",
            why(),
            hints.raise(limit)
        )
    });
    Code::NewSocketLimit.into()
}

/// What the store's buffer budget can give one socket beyond the kernel's
/// smallest buffers, keeping those smallest buffers for every socket it may
/// still create (up to `max_sockets`, `live` held now).
fn growth_room(shared: &StoreShared, live: usize) -> usize {
    let minimum = shared.network.minimum_charge();
    let slots_left = shared.limits.max_sockets.saturating_sub(live);
    shared
        .buffers
        .available()
        .saturating_sub(minimum.saturating_mul(slots_left))
}

/// Charges a new socket's buffers (the system's defaults) against the
/// store's budget. When the defaults would eat into the smallest buffers
/// kept for the sockets the store may still create, the new socket gets
/// smaller buffers; `new-socket-limit` when not even the kernel's smallest
/// fit (`max_sockets` of them need more than `max_store_buffers`).
fn charge_new_socket(
    io: &dyn DatagramSocket,
    shared: &StoreShared,
    live: usize,
) -> UdpResult<usize> {
    let (receive, send) = io.buffer_charges().unwrap_or((0, 0));
    let defaults = receive + send;
    let network = &shared.network;
    let minimum = network.minimum_charge();
    // What is left once the smallest buffers are kept for the store's
    // other possible sockets (this one is counted in `live`).
    let room = growth_room(shared, live);
    if defaults <= room && shared.buffers.try_charge(defaults) {
        return Ok(defaults);
    }
    let charge = room.max(minimum).min(defaults);
    let shrink_to = |size: usize| {
        io.set_receive_buffer_size(size).is_ok() && io.set_send_buffer_size(size).is_ok()
    };
    let charged_now = || {
        io.buffer_charges()
            .map(|(receive, send)| receive + send)
            .unwrap_or(usize::MAX)
    };
    let mut shrunk = shrink_to(network.size_for_charge(charge / 2).max(1));
    let mut charged = charged_now();
    if shrunk && charged > charge {
        // The kernel's minimums made the even split cost more: take them.
        shrunk = shrink_to(1);
        charged = charged_now();
    }
    if !shrunk || !shared.buffers.try_charge(charged) {
        return Err(socket_limit(shared, Limit::MaxStoreBuffers, || {
            format!(
                "max-store-buffers ({} bytes) has no room for another socket's buffers, even \
                 the kernel's smallest ({minimum} bytes each)",
                shared.limits.max_store_buffers
            )
        }));
    }
    let hints = shared.reporter.hints();
    UdpStats::add(&shared.stats.buffer_requests_capped, 1);
    shared.reporter.report(Topic::SmallerBuffers, None, 1, || {
        format!(
            "new sockets get smaller buffers than the system's ({} and {} bytes) so that \
                 max-sockets ({}) of them fit max-store-buffers ({} bytes); {}",
            network.size_for_charge(receive),
            network.size_for_charge(send),
            shared.limits.max_sockets,
            shared.limits.max_store_buffers,
            hints.raise(Limit::MaxStoreBuffers)
        )
    });
    Ok(charged)
}

/// Sets host memory aside for coalesced receives when the store's budget has
/// room for it beyond the smallest buffers of the sockets it may still
/// create; returns what was set aside (0: the socket then receives datagram
/// by datagram, which is only slower).
fn reserve_for_coalescing(io: &dyn DatagramSocket, shared: &StoreShared, live: usize) -> usize {
    let reserve = io.coalescing_reserve();
    if reserve == 0 || reserve > growth_room(shared, live) || !shared.buffers.try_charge(reserve) {
        return 0;
    }
    io.allow_coalescing();
    reserve
}

fn report_capped(shared: &StoreShared, limit: Limit, wanted: usize, granted: usize) {
    UdpStats::add(&shared.stats.buffer_requests_capped, 1);
    let hints = shared.reporter.hints();
    shared.reporter.report(Topic::Limit(limit), None, 1, || {
        format!(
            "a buffer size of {wanted} bytes was capped to {granted} by {}; {}",
            limit.flag(),
            hints.raise(limit)
        )
    });
}

fn option_result<T>(result: io::Result<T>) -> UdpResult<T> {
    result.map_err(|e| code_from_io(&e, Operation::Option).into())
}

fn buffer_size_argument(value: u64) -> UdpResult<usize> {
    if value == 0 {
        return Err(Code::InvalidArgument.into());
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// A bind or connect the policy must decide, which may wait; owns what it
/// needs, so that the resource table is free while it waits.
pub(crate) struct PolicyQuestion {
    shared: Arc<StoreShared>,
    addr: SocketAddr,
    /// A bind with the port shared: `share` is asked too.
    shared_port: bool,
}

/// Proof that the policy allowed binding to an address: the only way to
/// reach the bind syscall.
pub(crate) struct ApprovedBind(SocketAddr);

/// Proof that the policy allowed connecting to a peer and sending to it:
/// the only way to reach the connect syscall.
pub(crate) struct ApprovedPeer {
    peer: ConnectedPeer,
}

impl PolicyQuestion {
    /// Asks whether the socket may bind to the address.
    pub(crate) async fn approve_bind(self) -> UdpResult<ApprovedBind> {
        let policy = self.shared.policy.clone();
        if let Err(denial) = policy.check_async(SocketUse::Bind, self.addr).await {
            return Err(refuse(&self.shared, SocketUse::Bind, self.addr, &denial));
        }
        if self.shared_port
            && let Err(denial) = policy.check_async(SocketUse::Share, self.addr).await
        {
            return Err(refuse(&self.shared, SocketUse::Share, self.addr, &denial));
        }
        Ok(ApprovedBind(self.addr))
    }

    /// Asks whether the socket may connect to the peer. A connected stream
    /// sends to its peer, so connecting needs `connect` and `send`; and it
    /// hears from the peer unless a deny rule refuses `receive` from it.
    pub(crate) async fn approve_connect(self) -> UdpResult<ApprovedPeer> {
        let policy = self.shared.policy.clone();
        let addr = self.addr;
        let connect = policy.check_async(SocketUse::Connect, addr).await;
        let send = policy.check_async(SocketUse::Send, addr).await;
        let denial = match (connect, send) {
            (Ok(()), Ok(())) => None,
            (Err(denial), Ok(())) => Some(denial),
            (Ok(()), Err(send)) => Some(sending_refused(&send)),
            (Err(connect), Err(send)) => Some(both_refused(connect, &send)),
        };
        if let Some(denial) = denial {
            return Err(refuse(&self.shared, SocketUse::Connect, addr, &denial));
        }
        if let Some(extra) = destination_use(&self.shared, &addr, true)
            && let Err(denial) = policy.check_async(extra, addr).await
        {
            return Err(refuse(&self.shared, extra, addr, &denial));
        }
        let forbidden = policy
            .check(SocketUse::Receive, addr)
            .is_err_and(|denial| denial.is_forbidden());
        Ok(ApprovedPeer {
            peer: ConnectedPeer { addr, forbidden },
        })
    }
}

/// A connect refused because sending to the peer is.
fn sending_refused(send: &Denial) -> Denial {
    let reason = format!(
        "a connected stream sends to its peer, and {}",
        send.reason()
    );
    let denial = if send.is_forbidden() {
        Denial::forbidden(reason)
    } else {
        Denial::not_granted(reason)
    };
    match send.grant() {
        Some(grant) => denial.with_grant(grant.clone()),
        None => denial,
    }
}

/// A connect refused for both `connect` and `send`: one denial whose grant
/// covers both, when both name one for the same addresses.
fn both_refused(connect: Denial, send: &Denial) -> Denial {
    if connect.is_forbidden() {
        return connect;
    }
    if send.is_forbidden() {
        return sending_refused(send);
    }
    let reason = format!("{} (nor send)", connect.reason());
    let merged = match (connect.grant(), send.grant()) {
        (Some(c), Some(s)) if c.net == s.net && c.ports == s.ports => Some(Rule::new(
            c.uses.iter().chain(&s.uses).copied(),
            c.net,
            c.ports.clone(),
        )),
        (Some(c), _) => Some(c.clone()),
        (None, _) => None,
    };
    let denial = Denial::not_granted(reason);
    match merged {
        Some(grant) => denial.with_grant(grant),
        None => denial,
    }
}

/// The use a destination needs besides `send`: `join` for a multicast
/// group, `broadcast` for a broadcast address. Directed broadcast addresses
/// are looked up only when `may_broadcast` (the socket enabled broadcast):
/// without it the network refuses them anyway.
pub(crate) fn destination_use(
    shared: &StoreShared,
    destination: &SocketAddr,
    may_broadcast: bool,
) -> Option<SocketUse> {
    match destination.ip() {
        ip if ip.is_multicast() => Some(SocketUse::Join),
        std::net::IpAddr::V4(v4)
            if v4.is_broadcast() || (may_broadcast && shared.network.is_broadcast(v4)) =>
        {
            Some(SocketUse::Broadcast)
        }
        _ => None,
    }
}

/// Counts and reports a refused operation; the guest gets `access-denied`.
pub(crate) fn refuse(
    shared: &StoreShared,
    socket_use: SocketUse,
    addr: SocketAddr,
    denial: &Denial,
) -> UdpError {
    UdpStats::add(&shared.stats.denied, 1);
    let hints = shared.reporter.hints();
    shared
        .reporter
        .report(Topic::Denied(socket_use), Some(addr), 1, || {
            // A group membership has no port.
            let target = match socket_use {
                SocketUse::Join if addr.port() == 0 => addr.ip().to_string(),
                _ => addr.to_string(),
            };
            let mut message = format!("denied: {socket_use} {target}: {}", denial.reason());
            if let Some(grant) = denial.grant() {
                message.push_str("; to grant it: ");
                message.push_str(&hints.grant(grant));
            }
            message
        });
    Code::AccessDenied.into()
}

/// The family check shared by bind, stream and send.
fn validate_family(family: Family, addr: &SocketAddr) -> UdpResult<()> {
    if !family.matches(addr) {
        return Err(Code::InvalidArgument.into());
    }
    if let SocketAddr::V6(v6) = addr {
        // An IPv4-mapped address would reach IPv4 through an IPv6 socket,
        // which V6ONLY sockets cannot do; the WIT treats it as the wrong
        // family.
        if is_ipv4_mapped(v6) {
            return Err(Code::InvalidArgument.into());
        }
    }
    Ok(())
}

/// Checks a remote address given to `stream` or `send`:
/// WIT: "invalid-argument: The remote-address has the wrong address family.",
/// "... is set to INADDR_ANY (0.0.0.0 / ::).", "The port in remote-address is
/// set to 0."
pub(crate) fn validate_remote(family: Family, remote: &SocketAddr) -> UdpResult<()> {
    validate_family(family, remote)?;
    if remote.ip().is_unspecified() || remote.port() == 0 {
        return Err(Code::InvalidArgument.into());
    }
    Ok(())
}

fn is_ipv4_mapped(addr: &SocketAddrV6) -> bool {
    addr.ip().to_ipv4_mapped().is_some()
}

/// The state machine on the simulated network, without a guest.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::{ReceiveSlots, Transmit};
    use crate::streams::{IncomingDatagramStream, OutgoingDatagramStream};
    use crate::{Faults, SimNetwork, SimNode, UdpCtx};

    /// A store on `node` with `rules`.
    fn ctx(node: &SimNode, rules: &[&str]) -> UdpCtx {
        let mut builder = UdpCtx::builder();
        for rule in rules {
            builder.allow(rule.parse().expect("rule"));
        }
        builder.network(Arc::new(node.clone())).build()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    async fn bound(ctx: &UdpCtx, local: &str) -> UdpSocket {
        let mut socket =
            UdpSocket::create(Family::Ipv4, &ctx.shared, &ctx.live_sockets).expect("socket");
        let question = socket.prepare_bind(addr(local)).expect("bind checks");
        let approved = question.approve_bind().await.expect("allowed");
        socket.start_bind(approved).expect("bind");
        socket.finish_bind().expect("finish");
        socket
    }

    async fn connect(
        socket: &mut UdpSocket,
        peer: Option<&str>,
    ) -> UdpResult<(IncomingDatagramStream, OutgoingDatagramStream)> {
        let approved = match socket.prepare_stream(peer.map(addr))? {
            Some(question) => Some(question.approve_connect().await?),
            None => None,
        };
        let parts = socket.stream(approved)?;
        Ok((
            IncomingDatagramStream::new(&parts),
            OutgoingDatagramStream::new(&parts),
        ))
    }

    fn code(result: UdpResult<impl Sized>) -> Option<Code> {
        match result {
            Err(UdpError::Code(code)) => Some(code),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn connecting_needs_send_as_well_as_connect() {
        let node = SimNetwork::new(1).node([]);
        let only_connect = ctx(&node, &["bind:127.0.0.1", "connect,receive:127.0.0.1"]);
        let mut socket = bound(&only_connect, "127.0.0.1:0").await;
        let refused = connect(&mut socket, Some("127.0.0.1:9")).await;
        assert_eq!(code(refused), Some(Code::AccessDenied));
        assert_eq!(only_connect.stats().denied, 1);

        let with_send = ctx(&node, &["bind:127.0.0.1", "connect,send:127.0.0.1"]);
        let mut socket = bound(&with_send, "127.0.0.1:0").await;
        assert!(connect(&mut socket, Some("127.0.0.1:9")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn replies_to_a_send_are_admitted_and_strangers_dropped() {
        // Two stores on one node share its loopback.
        let node = SimNetwork::new(1).node([]);
        let client = ctx(&node, &["bind:127.0.0.1", "send:127.0.0.1:53"]);
        let server = ctx(&node, &["127.0.0.1"]);
        let mut server_socket = bound(&server, "127.0.0.1:53").await;
        let (_, server_out) = connect(&mut server_socket, None).await.expect("streams");
        let stranger = bound(&server, "127.0.0.1:0").await;
        let mut stranger_socket = stranger;
        let (_, stranger_out) = connect(&mut stranger_socket, None).await.expect("streams");

        let mut client_socket = bound(&client, "127.0.0.1:0").await;
        let client_addr = client_socket.local_address().expect("address");
        let (client_in, mut client_out) = connect(&mut client_socket, None).await.expect("streams");
        let send = |out: &mut OutgoingDatagramStream, to: SocketAddr| {
            out.check_send().expect("check-send");
            out.send(
                [Transmit {
                    destination: Some(to),
                    payload: b"x",
                }]
                .into_iter(),
            )
            .expect("send")
        };
        assert_eq!(send(&mut client_out, addr("127.0.0.1:53")), 1);
        let (mut server_out, mut stranger_out) = (server_out, stranger_out);
        send(&mut server_out, client_addr);
        send(&mut stranger_out, client_addr);
        let mut slots = ReceiveSlots::new(4);
        let received = client_in.receive(4, &mut slots).expect("receive");
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].source, addr("127.0.0.1:53"));
        let client_stats = client.stats();
        assert_eq!(client_stats.dropped_not_admitted, 1);
        assert_eq!(
            (client_stats.datagrams_sent, client_stats.bytes_sent),
            (1, 1)
        );
        assert_eq!(
            (client_stats.datagrams_received, client_stats.bytes_received),
            (1, 1)
        );
        assert!(client_stats.permits_granted >= 1, "{client_stats:?}");
        assert_eq!(client_stats.zero_permits, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn check_send_says_0_on_a_full_buffer_and_the_pollable_wakes_in_time() {
        use wasmtime_wasi_io::poll::Pollable as _;
        let network = SimNetwork::new(1);
        network.set_faults(Faults::none().rate(100));
        let store = ctx(&network.node([]), &["127.0.0.1"]);
        let peer = bound(&store, "127.0.0.1:0").await;
        let peer_addr = peer.local_address().expect("address").to_string();
        let mut socket = bound(&store, "127.0.0.1:0").await;
        socket.set_send_buffer_size(2048).expect("size");
        let (_, mut out) = connect(&mut socket, Some(&peer_addr))
            .await
            .expect("streams");
        let payload = [0u8; 512];
        let mut zero_at = None;
        for _ in 0..20 {
            let permitted = out.check_send().expect("check-send");
            if permitted == 0 {
                zero_at = Some(tokio::time::Instant::now());
                break;
            }
            let batch = (0..permitted).map(|_| Transmit {
                destination: None,
                payload: &payload,
            });
            out.send(batch.collect::<Vec<_>>().into_iter())
                .expect("send");
        }
        let zero_at = zero_at.expect("check-send said 0");
        let mut readiness = out.readiness();
        readiness.ready().await;
        // One datagram departs every 10 ms on this link.
        assert!(zero_at.elapsed() <= Duration::from_millis(10));
        assert!(out.check_send().expect("check-send") >= 1);
    }
}
