//! Per-store state: the policy, the limits, counters, and the view trait that
//! hands it to the host functions.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wasmtime::component::ResourceTable;

use crate::backend::ReceiveSlots;
use crate::policy::{AllowAll, AllowList, AllowRule, DenyAll, UdpPolicy};

/// Largest payload a UDP datagram can carry over IPv6 (65535 − 8 byte
/// header); IPv4's is 65507.
pub const MAX_DATAGRAM_SIZE: usize = 65_527;

/// How many datagrams one receive syscall can take: each store keeps this
/// many 64 KiB receive slots, allocated on the first `receive`. Pages become
/// resident only as datagrams land in them (a page per slot for small
/// datagrams, 2 MiB at most). A `receive` asking for more makes more calls.
pub(crate) const RECEIVE_SLOTS: usize = 32;

/// Default for [`UdpCtxBuilder::max_sockets`].
pub const DEFAULT_MAX_SOCKETS: usize = 1024;
/// Default for [`UdpCtxBuilder::max_send_batch`].
pub const DEFAULT_MAX_SEND_BATCH: u64 = 64;
/// Default for [`UdpCtxBuilder::max_receive_batch`].
pub const DEFAULT_MAX_RECEIVE_BATCH: usize = 64;

/// The UDP provider's state for one store.
///
/// Built with [`UdpCtx::builder`]; the defaults, in one place:
///
/// | setting | default |
/// |---|---|
/// | policy | [`DenyAll`]: nothing is granted until the embedder says so |
/// | [`max_sockets`](UdpCtxBuilder::max_sockets) | [`DEFAULT_MAX_SOCKETS`] (1024) live sockets |
/// | [`max_send_batch`](UdpCtxBuilder::max_send_batch) | [`DEFAULT_MAX_SEND_BATCH`] (64) datagrams permitted per `check-send` |
/// | [`max_receive_batch`](UdpCtxBuilder::max_receive_batch) | [`DEFAULT_MAX_RECEIVE_BATCH`] (64) datagrams returned per `receive` |
pub struct UdpCtx {
    pub(crate) policy: Arc<dyn UdpPolicy>,
    pub(crate) max_sockets: usize,
    pub(crate) max_send_batch: u64,
    pub(crate) max_receive_batch: usize,
    pub(crate) live_sockets: Arc<AtomicUsize>,
    pub(crate) stats: Arc<UdpStats>,
    /// Scratch space every `receive` of this store reads into before copying
    /// each datagram out at its exact size. Allocated on first use.
    pub(crate) receive_slots: Option<ReceiveSlots>,
}

impl UdpCtx {
    /// A builder with the documented defaults.
    pub fn builder() -> UdpCtxBuilder {
        UdpCtxBuilder::new()
    }

    /// Counters of what the guests of this store have done so far.
    pub fn stats(&self) -> UdpStatsSnapshot {
        self.stats.snapshot()
    }

    /// How many sockets the guest currently holds (including sockets dropped
    /// by the guest whose streams are still alive).
    pub fn live_sockets(&self) -> usize {
        self.live_sockets.load(Ordering::Relaxed)
    }
}

impl Default for UdpCtx {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl fmt::Debug for UdpCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpCtx")
            .field("max_sockets", &self.max_sockets)
            .field("max_send_batch", &self.max_send_batch)
            .field("max_receive_batch", &self.max_receive_batch)
            .field("live_sockets", &self.live_sockets())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`UdpCtx`]. Every setting and its default is listed on
/// [`UdpCtx`].
pub struct UdpCtxBuilder {
    policy: Option<Arc<dyn UdpPolicy>>,
    allow_list: AllowList,
    max_sockets: usize,
    max_send_batch: u64,
    max_receive_batch: usize,
}

impl UdpCtxBuilder {
    /// A builder with the defaults listed on [`UdpCtx`].
    pub fn new() -> Self {
        Self {
            policy: None,
            allow_list: AllowList::new(),
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_send_batch: DEFAULT_MAX_SEND_BATCH,
            max_receive_batch: DEFAULT_MAX_RECEIVE_BATCH,
        }
    }

    /// Grants what `rule` allows, in addition to earlier grants. Ignored once
    /// [`policy`](Self::policy) sets a policy of the embedder's own.
    pub fn allow(&mut self, rule: AllowRule) -> &mut Self {
        self.allow_list.push(rule);
        self
    }

    /// Grants every use of loopback (`127.0.0.0/8`, `::1`) and binding to the
    /// wildcard addresses; see [`AllowList::loopback`].
    pub fn allow_loopback(&mut self) -> &mut Self {
        for rule in AllowList::loopback().rules() {
            self.allow_list.push(rule.clone());
        }
        self
    }

    /// Grants everything the operating system allows.
    pub fn inherit_network(&mut self) -> &mut Self {
        self.policy(AllowAll)
    }

    /// Replaces the rules with a policy of the embedder's own.
    pub fn policy(&mut self, policy: impl UdpPolicy) -> &mut Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Most sockets a guest may hold at once; the next `create-udp-socket`
    /// returns `new-socket-limit`. At least 1.
    pub fn max_sockets(&mut self, max: usize) -> &mut Self {
        self.max_sockets = max.max(1);
        self
    }

    /// Most datagrams one `check-send` permits. At least 1. Below this cap
    /// the permit is sized to the send buffer: as many datagrams of the size
    /// the stream last sent as fit the room the kernel guarantees when it
    /// reports the socket writable.
    pub fn max_send_batch(&mut self, max: u64) -> &mut Self {
        self.max_send_batch = max.max(1);
        self
    }

    /// Most datagrams one `receive` returns, whatever `max-results` asks. At
    /// least 1. Each receive syscall takes up to 32 datagrams; a larger
    /// batch makes more than one.
    pub fn max_receive_batch(&mut self, max: usize) -> &mut Self {
        self.max_receive_batch = max.max(1);
        self
    }

    /// The context.
    pub fn build(&self) -> UdpCtx {
        let policy: Arc<dyn UdpPolicy> = match &self.policy {
            Some(policy) => policy.clone(),
            None if self.allow_list.rules().is_empty() => Arc::new(DenyAll),
            None => Arc::new(self.allow_list.clone()),
        };
        UdpCtx {
            policy,
            max_sockets: self.max_sockets,
            max_send_batch: self.max_send_batch,
            max_receive_batch: self.max_receive_batch,
            live_sockets: Arc::default(),
            stats: Arc::default(),
            receive_slots: None,
        }
    }
}

impl Default for UdpCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Gives the UDP host functions access to the store's [`UdpCtx`] and its
/// [`ResourceTable`] (the same table wasmtime-wasi uses).
pub trait UdpView: Send {
    /// The context and table of this store.
    fn udp(&mut self) -> UdpCtxView<'_>;
}

/// What the UDP host functions work on: the context and the resource table.
pub struct UdpCtxView<'a> {
    /// The UDP context.
    pub ctx: &'a mut UdpCtx,
    /// The store's resource table, shared with wasmtime-wasi.
    pub table: &'a mut ResourceTable,
}

/// Live counters; read them through [`UdpCtx::stats`].
#[derive(Default)]
pub(crate) struct UdpStats {
    pub sockets_created: AtomicU64,
    pub datagrams_sent: AtomicU64,
    pub datagrams_received: AtomicU64,
    pub datagrams_filtered: AtomicU64,
    pub denied: AtomicU64,
}

impl UdpStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> UdpStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UdpStatsSnapshot {
            sockets_created: get(&self.sockets_created),
            datagrams_sent: get(&self.datagrams_sent),
            datagrams_received: get(&self.datagrams_received),
            datagrams_filtered: get(&self.datagrams_filtered),
            denied: get(&self.denied),
        }
    }
}

/// What the guests of one store have done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpStatsSnapshot {
    /// Successful `create-udp-socket` calls.
    pub sockets_created: u64,
    /// Datagrams handed to the kernel by `send`.
    pub datagrams_sent: u64,
    /// Datagrams returned to the guest by `receive`.
    pub datagrams_received: u64,
    /// Datagrams taken from the kernel and not returned: from a source other
    /// than the stream's remote address (queued before the association
    /// changed) or from a source the policy refuses.
    pub datagrams_filtered: u64,
    /// Operations the policy refused.
    pub denied: u64,
}

/// One live socket's claim on [`UdpCtxBuilder::max_sockets`], released when
/// the socket and all its streams are gone.
pub(crate) struct SocketSlot(Arc<AtomicUsize>);

impl SocketSlot {
    /// Claims a slot, or `None` when `max` sockets are already live.
    pub fn claim(live: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Self(live.clone()))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Store data for running a component with wasmtime-wasi plus this crate's
/// UDP: the three pieces both views need, in one value. Embedders with a
/// store type of their own implement [`UdpView`] (and `WasiView`) on it
/// instead.
pub struct WasiUdpState {
    /// wasmtime-wasi's context (stdio, args, clocks, ...).
    pub wasi: wasmtime_wasi::WasiCtx,
    /// This crate's context.
    pub udp: UdpCtx,
    /// The resource table both share.
    pub table: ResourceTable,
}

impl WasiUdpState {
    /// The state for `wasi` and `udp` with an empty resource table.
    pub fn new(wasi: wasmtime_wasi::WasiCtx, udp: UdpCtx) -> Self {
        Self {
            wasi,
            udp,
            table: ResourceTable::new(),
        }
    }
}

impl wasmtime_wasi::WasiView for WasiUdpState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl UdpView for WasiUdpState {
    fn udp(&mut self) -> UdpCtxView<'_> {
        UdpCtxView {
            ctx: &mut self.udp,
            table: &mut self.table,
        }
    }
}
