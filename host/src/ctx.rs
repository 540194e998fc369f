//! Per-store state: the policy, the limits, counters, and the view trait that
//! hands it to the host functions.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wasmtime::component::ResourceTable;

use crate::backend::tokio::OsNetwork;
use crate::backend::{Network, ReceiveSlots};
use crate::descriptors::{DescriptorBudget, StoreDescriptors};
use crate::error::Code;
use crate::limits::{BufferBudget, Limits, MAX_DATAGRAM_SIZE, SendBucket, SendRate};
use crate::lookup::{NameLookup, ResolveAddressStream};
use crate::policy::{DenyAll, Rule, RuleSet, UdpPolicy};
use crate::report::{Hints, Reporter};

/// Most buffers one receive syscall can take: each store keeps this many
/// 64 KiB receive slots (fewer when its `max_receive_batch` is smaller),
/// allocated on the first `receive`. Pages become resident only as datagrams
/// land in them (a page per slot for small datagrams, 2 MiB at most); a slot
/// may hold a run of up to 64 datagrams the kernel coalesced. A `receive`
/// asking for more makes more calls.
pub(crate) const RECEIVE_SLOTS: usize = 32;

/// The UDP provider's state for one store.
///
/// Built with [`UdpCtx::builder`]. The policy defaults to [`DenyAll`]:
/// nothing is granted until the embedder says so. The limits and their
/// defaults are listed on [`Limits`].
pub struct UdpCtx {
    pub(crate) shared: Arc<StoreShared>,
    pub(crate) live_sockets: Arc<AtomicUsize>,
    /// Scratch space every `receive` of this store reads into before copying
    /// each datagram out at its exact size. Allocated on first use.
    pub(crate) receive_slots: Option<ReceiveSlots>,
    /// Which names `ip-name-lookup` resolves.
    pub(crate) name_lookup: NameLookup,
}

/// What a store's sockets share with each other and with the store.
pub(crate) struct StoreShared {
    pub(crate) policy: Arc<dyn UdpPolicy>,
    pub(crate) stats: UdpStats,
    pub(crate) buffers: BufferBudget,
    /// Present when the send rate is limited.
    pub(crate) send_bucket: Option<SendBucket>,
    pub(crate) limits: Limits,
    pub(crate) reporter: Reporter,
    /// The store's part of the descriptor budget it shares.
    pub(crate) descriptors: StoreDescriptors,
    /// Where its sockets come from.
    pub(crate) network: Arc<dyn Network>,
    /// Each socket's counters.
    pub(crate) sockets: crate::stats::SocketRegistry,
}

impl UdpCtx {
    /// A builder with the documented defaults.
    pub fn builder() -> UdpCtxBuilder {
        UdpCtxBuilder::new()
    }

    /// Counters of what the guests of this store have done so far.
    pub fn stats(&self) -> UdpStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Each socket's counters: the last [`RETIRED_SOCKETS`](crate::RETIRED_SOCKETS)
    /// closed ones, then the open ones, each group in the order created.
    pub fn socket_stats(&self) -> Vec<crate::SocketStatsSnapshot> {
        self.shared.sockets.snapshot()
    }

    /// The limits this store runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Starts resolving `name` for `ip-name-lookup`, reporting a refusal.
    pub(crate) fn resolve(&self, name: &str) -> Result<ResolveAddressStream, Code> {
        let result = self.name_lookup.resolve(name);
        if result.as_ref().err() == Some(&Code::AccessDenied) {
            let shared = &self.shared;
            UdpStats::add(&shared.stats.denied, 1);
            let hints = shared.reporter.hints();
            let hosts = match self.name_lookup.hosts_file_path() {
                Some(path) => format!("localhost and the names in {}", path.display()),
                None => "localhost".into(),
            };
            shared
                .reporter
                .report(crate::report::Topic::NameLookupRefused, None, 1, || {
                    format!(
                        "denied: name lookup of `{name}`: only IP addresses, {hosts} resolve \
                         here; to use the system resolver: {}",
                        hints.allow_name_lookup()
                    )
                });
        }
        result
    }

    /// Which names this store's guests may resolve.
    pub fn name_lookup(&self) -> &NameLookup {
        &self.name_lookup
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
            .field("limits", self.limits())
            .field("live_sockets", &self.live_sockets())
            .field("stats", &self.stats())
            .field("name_lookup", &self.name_lookup)
            .finish_non_exhaustive()
    }
}

/// Builds a [`UdpCtx`]. The limits and their defaults are listed on
/// [`Limits`].
pub struct UdpCtxBuilder {
    policy: Option<Arc<dyn UdpPolicy>>,
    rules: RuleSet,
    limits: Limits,
    hints: Hints,
    descriptors: Option<DescriptorBudget>,
    name_lookup: NameLookup,
    network: Option<Arc<dyn Network>>,
}

impl fmt::Debug for UdpCtxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpCtxBuilder")
            .field("custom_policy", &self.policy.is_some())
            .field("rules", &self.rules)
            .field("limits", &self.limits)
            .field("hints", &self.hints)
            .field("descriptors", &self.descriptors)
            .field("name_lookup", &self.name_lookup)
            .field("network", &self.network)
            .finish()
    }
}

impl UdpCtxBuilder {
    /// A builder that grants nothing, with the default [`Limits`].
    pub fn new() -> Self {
        Self {
            policy: None,
            rules: RuleSet::new(),
            limits: Limits::default(),
            hints: Hints::default(),
            descriptors: None,
            name_lookup: NameLookup::default(),
            network: None,
        }
    }

    /// Grants what `rule` covers (unless a deny rule refuses it). Ignored
    /// once [`policy`](Self::policy) sets a policy of the embedder's own.
    pub fn allow(&mut self, rule: Rule) -> &mut Self {
        self.rules.allow(rule);
        self
    }

    /// Refuses what `rule` covers, whatever an allow rule grants. Ignored
    /// once [`policy`](Self::policy) sets a policy of the embedder's own.
    pub fn deny(&mut self, rule: Rule) -> &mut Self {
        self.rules.deny(rule);
        self
    }

    /// Adds every allow and deny rule of `rules`.
    pub fn rules(&mut self, rules: &RuleSet) -> &mut Self {
        self.rules.extend(rules);
        self
    }

    /// Grants loopback (`127.0.0.0/8`, `::1`) and binding the wildcard
    /// addresses on port 0; see [`RuleSet::loopback`] for exactly what.
    pub fn allow_loopback(&mut self) -> &mut Self {
        self.rules(&RuleSet::loopback())
    }

    /// Grants everything the operating system allows except binding ports
    /// below 1024, and except what deny rules refuse; see
    /// [`RuleSet::everything`].
    pub fn inherit_network(&mut self) -> &mut Self {
        self.rules(&RuleSet::everything())
    }

    /// Replaces the rules with a policy of the embedder's own.
    pub fn policy(&mut self, policy: impl UdpPolicy) -> &mut Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// How the provider's warnings name what would grant a refused
    /// operation or raise a limit: as builder calls (the default) or as
    /// `wasi-udp` flags.
    pub fn hints(&mut self, hints: Hints) -> &mut Self {
        self.hints = hints;
        self
    }

    /// Which names `wasi:sockets/ip-name-lookup` resolves; by default IP
    /// address strings, `localhost` and the names in `/etc/hosts`
    /// ([`NameLookup::local`]): nothing leaves the machine.
    pub fn name_lookup(&mut self, lookup: NameLookup) -> &mut Self {
        self.name_lookup = lookup;
        self
    }

    /// Where the store's sockets come from: the operating system's network
    /// ([`OsNetwork`], the default) or a simulated one
    /// ([`SimNetwork::node`](crate::SimNetwork::node)), possibly captured
    /// ([`Capture::wrap`](crate::Capture::wrap)).
    pub fn network(&mut self, network: Arc<dyn Network>) -> &mut Self {
        self.network = Some(network);
        self
    }

    /// The descriptor budget this store's sockets share with other stores;
    /// [`DescriptorBudget::process`] unless given.
    pub fn descriptor_budget(&mut self, budget: DescriptorBudget) -> &mut Self {
        self.descriptors = Some(budget);
        self
    }

    /// Sets every limit at once.
    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self.max_sockets(limits.max_sockets)
            .max_send_batch(limits.max_send_batch)
            .max_receive_batch(limits.max_receive_batch)
            .max_datagram_size(limits.max_datagram_size)
            .send_rate(limits.send_rate)
    }

    /// Most peers one socket remembers having been allowed to send to; a
    /// datagram from one of them is admitted as a reply without a
    /// `receive` rule. Past this, the peer sent to longest ago is
    /// forgotten. 0 admits no replies at all (only `receive` rules and the
    /// connected peer).
    pub fn max_reply_peers(&mut self, max: usize) -> &mut Self {
        self.limits.max_reply_peers = max;
        self
    }

    /// Most sockets a guest may hold at once; the next `create-udp-socket`
    /// returns `new-socket-limit`. At least 1.
    pub fn max_sockets(&mut self, max: usize) -> &mut Self {
        self.limits.max_sockets = max.max(1);
        self
    }

    /// Most datagrams one `check-send` permits. At least 1. Below this cap
    /// the permit is sized to the send buffer: as many datagrams of the size
    /// the stream last sent as fit the room the kernel guarantees when it
    /// reports the socket writable.
    pub fn max_send_batch(&mut self, max: u64) -> &mut Self {
        self.limits.max_send_batch = max.max(1);
        self
    }

    /// Most datagrams one `receive` returns, whatever `max-results` asks. At
    /// least 1. Each receive syscall takes up to 32 datagrams; a larger
    /// batch makes more than one.
    pub fn max_receive_batch(&mut self, max: usize) -> &mut Self {
        self.limits.max_receive_batch = max.max(1);
        self
    }

    /// Largest payload a guest may send (larger is `datagram-too-large`) or
    /// receive (larger datagrams are dropped and counted in
    /// [`UdpStatsSnapshot::dropped_oversized`]). At most
    /// [`MAX_DATAGRAM_SIZE`], the protocol's own limit.
    pub fn max_datagram_size(&mut self, max: usize) -> &mut Self {
        self.limits.max_datagram_size = max.min(MAX_DATAGRAM_SIZE);
        self
    }

    /// Largest send or receive buffer a guest may set on one socket; larger
    /// requests are capped.
    pub fn max_socket_buffer(&mut self, bytes: usize) -> &mut Self {
        self.limits.max_socket_buffer = bytes;
        self
    }

    /// Most buffer space guests may set across a store's live sockets;
    /// requests beyond it are capped to what is left.
    pub fn max_store_buffers(&mut self, bytes: usize) -> &mut Self {
        self.limits.max_store_buffers = bytes;
        self
    }

    /// The store's send rate, shared by all its sockets: `check-send`
    /// permits only what the tokens allow, returns 0 when they are spent,
    /// and its pollable wakes when they return. Each rate given is at least
    /// 1 per second.
    pub fn send_rate(&mut self, rate: SendRate) -> &mut Self {
        self.limits.send_rate = SendRate {
            datagrams_per_second: rate.datagrams_per_second.map(|r| r.max(1)),
            bytes_per_second: rate.bytes_per_second.map(|r| r.max(1)),
        };
        self
    }

    /// The context.
    pub fn build(&self) -> UdpCtx {
        let policy: Arc<dyn UdpPolicy> = match &self.policy {
            Some(policy) => policy.clone(),
            None if self.rules.allow_rules().is_empty() => Arc::new(DenyAll),
            None => Arc::new(self.rules.clone()),
        };
        let limits = self.limits;
        UdpCtx {
            shared: Arc::new(StoreShared {
                policy,
                reporter: Reporter::new(self.hints),
                descriptors: self
                    .descriptors
                    .clone()
                    .unwrap_or_else(DescriptorBudget::process)
                    .join(),
                network: self.network.clone().unwrap_or_else(|| Arc::new(OsNetwork)),
                sockets: crate::stats::SocketRegistry::default(),
                stats: UdpStats::default(),
                buffers: BufferBudget::new(limits.max_store_buffers),
                send_bucket: limits
                    .send_rate
                    .is_limited()
                    .then(|| SendBucket::new(limits.send_rate)),
                limits,
            }),
            live_sockets: Arc::default(),
            receive_slots: None,
            name_lookup: self.name_lookup.clone(),
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
#[derive(Debug)]
pub struct UdpCtxView<'a> {
    /// The UDP context.
    pub ctx: &'a mut UdpCtx,
    /// The store's resource table, shared with wasmtime-wasi.
    pub table: &'a mut ResourceTable,
}

/// Live counters; read them through [`UdpCtx::stats`].
#[derive(Default)]
pub(crate) struct UdpStats {
    pub(crate) sockets_created: AtomicU64,
    pub(crate) datagrams_sent: AtomicU64,
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) permits_granted: AtomicU64,
    pub(crate) zero_permits: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) dropped_not_admitted: AtomicU64,
    pub(crate) dropped_forbidden: AtomicU64,
    pub(crate) dropped_not_peer: AtomicU64,
    pub(crate) dropped_oversized: AtomicU64,
    pub(crate) dropped_kernel_queue: AtomicU64,
    pub(crate) socket_limit_hits: AtomicU64,
    pub(crate) send_rate_stalls: AtomicU64,
    pub(crate) buffer_requests_capped: AtomicU64,
}

impl UdpStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> UdpStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UdpStatsSnapshot {
            sockets_created: get(&self.sockets_created),
            datagrams_sent: get(&self.datagrams_sent),
            datagrams_received: get(&self.datagrams_received),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            permits_granted: get(&self.permits_granted),
            zero_permits: get(&self.zero_permits),
            errors: get(&self.errors),
            denied: get(&self.denied),
            dropped_not_admitted: get(&self.dropped_not_admitted),
            dropped_forbidden: get(&self.dropped_forbidden),
            dropped_not_peer: get(&self.dropped_not_peer),
            dropped_oversized: get(&self.dropped_oversized),
            dropped_kernel_queue: get(&self.dropped_kernel_queue),
            socket_limit_hits: get(&self.socket_limit_hits),
            send_rate_stalls: get(&self.send_rate_stalls),
            buffer_requests_capped: get(&self.buffer_requests_capped),
        }
    }
}

/// What the guests of one store have done so far, and what the provider
/// refused, dropped or capped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpStatsSnapshot {
    /// Successful `create-udp-socket` calls.
    pub sockets_created: u64,
    /// Datagrams handed to the kernel by `send`.
    pub datagrams_sent: u64,
    /// Datagrams returned to the guest by `receive`.
    pub datagrams_received: u64,
    /// Payload bytes of the datagrams sent.
    pub bytes_sent: u64,
    /// Payload bytes of the datagrams received.
    pub bytes_received: u64,
    /// Datagrams `check-send` permitted, in all.
    pub permits_granted: u64,
    /// Times `check-send` permitted none (a full buffer or a spent rate).
    pub zero_permits: u64,
    /// Error codes returned to the guest by socket and stream calls (each
    /// socket's [`SocketStatsSnapshot`](crate::SocketStatsSnapshot) has
    /// them by code).
    pub errors: u64,
    /// Operations (bind, connect, send) the policy refused with
    /// `access-denied`.
    pub denied: u64,
    /// Received datagrams dropped because no rule admits their source and
    /// they are no reply to the socket.
    pub dropped_not_admitted: u64,
    /// Received datagrams dropped because a deny rule refuses their source.
    pub dropped_forbidden: u64,
    /// Received datagrams dropped because they came from other than the
    /// connected peer (queued before `stream` connected the socket; the WIT
    /// guarantees the peer's address on a connected stream).
    pub dropped_not_peer: u64,
    /// Received datagrams dropped for being larger than
    /// [`Limits::max_datagram_size`].
    pub dropped_oversized: u64,
    /// Datagrams the kernel dropped because a socket's receive queue was
    /// full (Linux's `SO_RXQ_OVFL`; counted when the socket next receives).
    pub dropped_kernel_queue: u64,
    /// `create-udp-socket` calls refused with `new-socket-limit` (the
    /// store's [`Limits::max_sockets`], or the process out of descriptors).
    pub socket_limit_hits: u64,
    /// `check-send` calls that permitted nothing because the store's send
    /// rate was spent.
    pub send_rate_stalls: u64,
    /// Buffer-size requests capped by [`Limits::max_socket_buffer`] or
    /// [`Limits::max_store_buffers`].
    pub buffer_requests_capped: u64,
}

impl UdpStatsSnapshot {
    /// Received datagrams dropped, whatever the cause.
    pub fn datagrams_dropped(&self) -> u64 {
        self.dropped_not_admitted
            + self.dropped_forbidden
            + self.dropped_not_peer
            + self.dropped_oversized
    }
}

/// One live socket's claim on [`Limits::max_sockets`] and on the store's
/// part of the descriptor budget, released when the socket and all its
/// streams are gone.
pub(crate) struct SocketSlot {
    live: Arc<AtomicUsize>,
    shared: Arc<StoreShared>,
}

/// Which limit refused a socket.
pub(crate) enum SlotRefused {
    /// The store holds `max_sockets`.
    Store,
    /// The descriptor budget has none left for this store.
    Budget,
}

impl SocketSlot {
    /// Claims a slot, or says which limit is reached.
    pub(crate) fn claim(
        live: &Arc<AtomicUsize>,
        shared: &Arc<StoreShared>,
    ) -> Result<Self, SlotRefused> {
        let max = shared.limits.max_sockets;
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map_err(|_| SlotRefused::Store)?;
        if !shared.descriptors.claim() {
            live.fetch_sub(1, Ordering::AcqRel);
            return Err(SlotRefused::Budget);
        }
        Ok(Self {
            live: live.clone(),
            shared: shared.clone(),
        })
    }
}

impl SocketSlot {
    /// How many sockets the store holds, this one included.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.shared.descriptors.release();
        self.live.fetch_sub(1, Ordering::AcqRel);
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

impl fmt::Debug for WasiUdpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasiUdpState")
            .field("udp", &self.udp)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
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
