//! Per-socket counters, readable while guests run: what each socket sent,
//! received, dropped and was refused, the permits it got, and its errors by
//! WIT code. A store keeps its live sockets' counters and the last
//! [`RETIRED_SOCKETS`] closed ones.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::backend::Family;
use crate::error::Code;
use crate::report::DropCause;

/// How many closed sockets' counters a store keeps.
pub const RETIRED_SOCKETS: usize = 4096;

/// The WIT error codes, in `network.wit`'s order, as counters are kept.
const CODES: [Code; 19] = [
    Code::Unknown,
    Code::AccessDenied,
    Code::NotSupported,
    Code::InvalidArgument,
    Code::OutOfMemory,
    Code::Timeout,
    Code::ConcurrencyConflict,
    Code::NotInProgress,
    Code::WouldBlock,
    Code::InvalidState,
    Code::NewSocketLimit,
    Code::AddressNotBindable,
    Code::AddressInUse,
    Code::RemoteUnreachable,
    Code::ConnectionRefused,
    Code::DatagramTooLarge,
    Code::NameUnresolvable,
    Code::TemporaryResolverFailure,
    Code::PermanentResolverFailure,
];

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Unknown => "unknown",
        Code::AccessDenied => "access-denied",
        Code::NotSupported => "not-supported",
        Code::InvalidArgument => "invalid-argument",
        Code::OutOfMemory => "out-of-memory",
        Code::Timeout => "timeout",
        Code::ConcurrencyConflict => "concurrency-conflict",
        Code::NotInProgress => "not-in-progress",
        Code::WouldBlock => "would-block",
        Code::InvalidState => "invalid-state",
        Code::NewSocketLimit => "new-socket-limit",
        Code::AddressNotBindable => "address-not-bindable",
        Code::AddressInUse => "address-in-use",
        Code::RemoteUnreachable => "remote-unreachable",
        Code::ConnectionRefused => "connection-refused",
        Code::DatagramTooLarge => "datagram-too-large",
        Code::NameUnresolvable => "name-unresolvable",
        Code::TemporaryResolverFailure => "temporary-resolver-failure",
        Code::PermanentResolverFailure => "permanent-resolver-failure",
    }
}

/// One socket's live counters.
#[derive(Debug)]
pub(crate) struct SocketStats {
    pub(crate) serial: u64,
    /// The guest's handle for the socket (the resource's index).
    pub(crate) handle: AtomicU32,
    family: Family,
    pub(crate) datagrams_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) permits_granted: AtomicU64,
    pub(crate) zero_permits: AtomicU64,
    /// Made on the first refusal, drop or error: most sockets never see one,
    /// and a store may hold thousands of sockets.
    rare: OnceLock<Box<RareCounters>>,
}

/// The counters of what goes wrong, by cause.
#[derive(Debug, Default)]
struct RareCounters {
    denied: AtomicU64,
    dropped: [AtomicU64; 5],
    errors: [AtomicU64; CODES.len()],
}

impl SocketStats {
    pub(crate) fn new(serial: u64, family: Family) -> Self {
        Self {
            serial,
            handle: AtomicU32::new(0),
            family,
            datagrams_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            datagrams_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            permits_granted: AtomicU64::new(0),
            zero_permits: AtomicU64::new(0),
            rare: OnceLock::new(),
        }
    }

    fn rare(&self) -> &RareCounters {
        self.rare.get_or_init(Box::default)
    }

    pub(crate) fn denied(&self) {
        Self::add(&self.rare().denied, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, cause: DropCause, n: u64) {
        let index = match cause {
            DropCause::NotAdmitted => 0,
            DropCause::Forbidden => 1,
            DropCause::NotPeer => 2,
            DropCause::Oversized => 3,
            DropCause::KernelQueue => 4,
        };
        Self::add(&self.rare().dropped[index], n);
    }

    pub(crate) fn error(&self, code: Code) {
        if let Some(index) = CODES.iter().position(|c| *c == code) {
            Self::add(&self.rare().errors[index], 1);
        }
    }

    /// The counters now, with the socket's addresses.
    pub(crate) fn snapshot(
        &self,
        open: bool,
        (local, remote): (Option<SocketAddr>, Option<SocketAddr>),
    ) -> SocketStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let none = RareCounters::default();
        let rare = self.rare.get().map_or(&none, |rare| rare);
        SocketStatsSnapshot {
            handle: self.handle.load(Ordering::Relaxed),
            ipv6: self.family == Family::Ipv6,
            open,
            local,
            remote,
            datagrams_sent: get(&self.datagrams_sent),
            bytes_sent: get(&self.bytes_sent),
            datagrams_received: get(&self.datagrams_received),
            bytes_received: get(&self.bytes_received),
            dropped: rare.dropped.iter().map(get).sum(),
            denied: get(&rare.denied),
            permits_granted: get(&self.permits_granted),
            zero_permits: get(&self.zero_permits),
            errors: CODES
                .iter()
                .zip(&rare.errors)
                .filter(|(_, n)| get(n) > 0)
                .map(|(code, n)| (code_name(*code), get(n)))
                .collect(),
        }
    }
}

/// One socket's counters at a moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStatsSnapshot {
    /// The guest's handle for the socket.
    pub handle: u32,
    /// Whether it is an IPv6 socket.
    pub ipv6: bool,
    /// Whether the guest still holds it (or its streams).
    pub open: bool,
    /// Where it was bound, once it was.
    pub local: Option<SocketAddr>,
    /// Its connected peer, if any.
    pub remote: Option<SocketAddr>,
    /// Datagrams handed to the network by `send`.
    pub datagrams_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Datagrams returned by `receive`.
    pub datagrams_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Received datagrams dropped, whatever the cause (the store's stats
    /// say which).
    pub dropped: u64,
    /// Operations the policy refused.
    pub denied: u64,
    /// Datagrams `check-send` permitted, in all.
    pub permits_granted: u64,
    /// Times `check-send` permitted none.
    pub zero_permits: u64,
    /// Errors returned to the guest, by WIT code.
    pub errors: Vec<(&'static str, u64)>,
}

/// A live socket, as the registry sees it: its counters and addresses.
pub(crate) trait CountedSocket: Send + Sync {
    /// The socket's counters.
    fn stats(&self) -> &SocketStats;
    /// Where it is bound and connected, as far as it is.
    fn addresses(&self) -> (Option<SocketAddr>, Option<SocketAddr>);
}

/// A store's sockets' counters: live ones, and the last closed ones.
///
/// Live sockets are held weakly, and their counters live in the socket
/// itself: a store may hold ten thousand sockets, and counting them should
/// not cost a second allocation each.
#[derive(Default)]
pub(crate) struct SocketRegistry {
    inner: Mutex<Registry>,
}

impl std::fmt::Debug for SocketRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("SocketRegistry")
            .field("live", &registry.live.len())
            .field("retired", &registry.retired.len())
            .finish()
    }
}

#[derive(Default)]
struct Registry {
    next_serial: u64,
    live: HashMap<u64, Weak<dyn CountedSocket>>,
    retired: VecDeque<SocketStatsSnapshot>,
}

impl SocketRegistry {
    /// The serial number of the next socket, in creation order.
    pub(crate) fn next_serial(&self) -> u64 {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let serial = registry.next_serial;
        registry.next_serial += 1;
        serial
    }

    /// Counts `socket` among the live ones until [`close`](Self::close).
    pub(crate) fn register(&self, serial: u64, socket: Weak<dyn CountedSocket>) {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry.live.insert(serial, socket);
    }

    /// Keeps a closed socket's last counters.
    pub(crate) fn close(&self, serial: u64, last: SocketStatsSnapshot) {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry.live.remove(&serial);
        if registry.retired.len() == RETIRED_SOCKETS {
            registry.retired.pop_front();
        }
        registry.retired.push_back(last);
    }

    /// Every socket's counters, in the order they were created.
    pub(crate) fn snapshot(&self) -> Vec<SocketStatsSnapshot> {
        let (mut all, mut live) = {
            let registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let live: Vec<Arc<dyn CountedSocket>> =
                registry.live.values().filter_map(Weak::upgrade).collect();
            let retired: Vec<SocketStatsSnapshot> = registry.retired.iter().cloned().collect();
            (retired, live)
        };
        // Outside the lock: the last reference to a socket may be one of
        // these, and dropping it closes the socket, which takes the lock.
        live.sort_by_key(|socket| socket.stats().serial);
        all.extend(
            live.iter()
                .map(|socket| socket.stats().snapshot(true, socket.addresses())),
        );
        drop(live);
        all
    }
}
