//! An in-memory network: nodes with addresses of their own, sockets bound
//! on them, datagrams that cross seeded faults (loss, duplication,
//! reordering, delay with jitter, MTU, rate, partitions) on tokio's clock,
//! which a paused runtime turns into virtual time. Nothing touches the
//! operating system's network.
//!
//! Invariants:
//! - a socket is in `bindings` exactly while it is bound, under its node,
//!   address and port;
//! - a socket's `send_queued` is the charge of its datagrams that have not
//!   departed yet, and never exceeds its send buffer by more than one
//!   datagram (a datagram is admitted while the buffer is not full);
//! - a socket's `queued` is the charge of its receive queue, likewise
//!   bounded by its receive buffer;
//! - `events` holds every departure and arrival not yet due, ordered by time
//!   and then by the order they were made, so equal seeds and inputs give
//!   equal runs.

mod faults;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use self::faults::Rng;
pub use self::faults::{Faults, Partition};
use super::{
    DatagramSocket, Family, Membership, Network, ReceiveSlots, Received, SendOutcome, Transmit,
};

/// What a queued datagram costs a simulated buffer beyond its payload, as
/// a kernel's bookkeeping would.
const DATAGRAM_OVERHEAD: usize = 256;
/// A simulated socket's buffers until the guest sets them.
const DEFAULT_BUFFER: usize = 212_992;
/// The smallest buffer a simulated socket accepts.
const MINIMUM_BUFFER: usize = 2048;
/// The first port handed out for a bind to port 0.
const FIRST_EPHEMERAL_PORT: u16 = 49_152;
/// Most groups one socket may be in, as Linux's default
/// `igmp_max_memberships`.
const MAX_MEMBERSHIPS: usize = 20;

/// A simulated network, shared by every node (store) on it. Cloning gives
/// another handle to the same network.
#[derive(Clone)]
pub struct SimNetwork {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
}

type Handler = Box<dyn FnMut(&[u8], SocketAddr) -> Vec<Vec<u8>> + Send>;

struct State {
    rng: Rng,
    start: Instant,
    faults: Faults,
    /// Faults between two networks, in the order given: the first pair
    /// that matches a datagram's source and destination applies.
    link_faults: Vec<(crate::policy::IpNet, crate::policy::IpNet, Faults)>,
    partitions: Vec<Partition>,
    nodes: Vec<Vec<IpAddr>>,
    /// Per node, where the search for the next port to hand out starts:
    /// ports go round, as a kernel's do, so a port just closed is not the
    /// next one given.
    next_port: Vec<u16>,
    sockets: HashMap<u64, SockState>,
    next_socket: u64,
    /// (node, port) → the sockets bound to it, with their addresses.
    bindings: HashMap<(usize, u16), Vec<(IpAddr, u64)>>,
    endpoints: HashMap<SocketAddr, Handler>,
    events: BTreeMap<(Instant, u64), Event>,
    next_event: u64,
    /// When each link (source, destination address) is free to send again.
    link_free: HashMap<(IpAddr, IpAddr), Instant>,
    stats: SimStats,
}

/// What happened to the datagrams that crossed the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Datagrams delivered to a socket or endpoint.
    pub delivered: u64,
    /// Dropped by the loss fault.
    pub lost: u64,
    /// Extra copies made by the duplication fault.
    pub duplicated: u64,
    /// Datagrams delayed past later ones by the reordering fault.
    pub reordered: u64,
    /// Dropped for being larger than the MTU.
    pub too_large_for_mtu: u64,
    /// Dropped because a partition separated the two ends.
    pub partitioned: u64,
    /// Dropped because the hop limit ran out.
    pub hop_limit_exceeded: u64,
    /// Dropped because the receiver's queue was full.
    pub queue_full: u64,
    /// Answered with port unreachable: no socket on the destination port.
    pub port_unreachable: u64,
    /// Dropped because no node has the destination address.
    pub no_such_host: u64,
}

enum Event {
    /// A datagram leaves its sender: its charge leaves the send buffer.
    Depart { socket: u64, charge: usize },
    /// A datagram reaches its destination.
    Arrive(Packet),
}

struct Packet {
    from_socket: Option<u64>,
    source: SocketAddr,
    destination: SocketAddr,
    payload: Vec<u8>,
    /// For a datagram to a group or a broadcast address: which members it
    /// may reach.
    scope: Option<GroupScope>,
}

/// How a datagram leaves its sender.
#[derive(Clone, Copy, Debug)]
struct Sending {
    /// Hops it may cross.
    hop_limit: u8,
    /// For a group or a broadcast address: which members it reaches.
    scope: Option<GroupScope>,
}

/// Which members of a group (or listeners of a broadcast) a datagram
/// reaches.
#[derive(Clone, Copy, Debug)]
struct GroupScope {
    /// Members on the sender's own node too (multicast loopback; always
    /// for broadcast).
    loop_back: bool,
    /// Members on the sender's own node only (a multicast hop limit of 0).
    local_only: bool,
}

struct SockState {
    node: usize,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    queue: VecDeque<(Vec<u8>, SocketAddr)>,
    queued: usize,
    receive_buffer: usize,
    send_buffer: usize,
    send_queued: usize,
    hop_limit: u8,
    /// An ICMP report for the next send or receive, as an errno.
    error: Option<i32>,
    /// Datagrams dropped because the queue was full, as `SO_RXQ_OVFL`
    /// counts them.
    drops: u32,
    notify: Arc<Notify>,
    /// Whether the socket shares its port with others that do.
    shared_port: bool,
    /// The groups the socket is in.
    memberships: Vec<Membership>,
    /// The hop limit of datagrams to groups.
    multicast_hops: u8,
    /// Whether datagrams to groups reach members on the sender's node.
    multicast_loop: bool,
    /// Whether the socket may send to broadcast addresses.
    broadcast: bool,
}

impl SimNetwork {
    /// An empty network whose faults draw on `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    rng: Rng::new(seed),
                    start: Instant::now(),
                    faults: Faults::none(),
                    link_faults: Vec::new(),
                    partitions: Vec::new(),
                    nodes: Vec::new(),
                    next_port: Vec::new(),
                    sockets: HashMap::new(),
                    next_socket: 0,
                    bindings: HashMap::new(),
                    endpoints: HashMap::new(),
                    events: BTreeMap::new(),
                    next_event: 0,
                    link_free: HashMap::new(),
                    stats: SimStats::default(),
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the faults every datagram crosses (unless a link has its own).
    pub fn set_faults(&self, faults: Faults) -> &Self {
        self.lock().faults = faults;
        self
    }

    /// Sets the faults of datagrams from `a` to `b` and from `b` to `a`.
    pub fn set_link_faults(
        &self,
        a: crate::policy::IpNet,
        b: crate::policy::IpNet,
        faults: Faults,
    ) -> &Self {
        self.lock().link_faults.push((a, b, faults));
        self
    }

    /// Separates two networks for a while.
    pub fn add_partition(&self, partition: Partition) -> &Self {
        self.lock().partitions.push(partition);
        self
    }

    /// A node with `addresses` (besides its own loopback), for one store:
    /// its sockets may bind those addresses, and datagrams to them reach
    /// it.
    pub fn node(&self, addresses: impl IntoIterator<Item = IpAddr>) -> SimNode {
        let mut state = self.lock();
        state.nodes.push(addresses.into_iter().collect());
        state.next_port.push(FIRST_EPHEMERAL_PORT);
        SimNode {
            network: self.clone(),
            node: state.nodes.len() - 1,
        }
    }

    /// Puts a host-side endpoint at `address`: each datagram that reaches
    /// it is handed to `handler` with its source, and whatever the handler
    /// returns goes back to that source, across the same faults. The
    /// handler runs while the network is locked: it must not use it.
    pub fn add_endpoint(
        &self,
        address: SocketAddr,
        handler: impl FnMut(&[u8], SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
    ) -> &Self {
        self.lock().endpoints.insert(address, Box::new(handler));
        self
    }

    /// What happened to the datagrams so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// The network's time since it was made.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(self.lock().start)
    }
}

impl fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimNetwork")
            .field("faults", &state.faults)
            .field("nodes", &state.nodes)
            .field("sockets", &state.sockets.len())
            .field("stats", &state.stats)
            .finish_non_exhaustive()
    }
}

/// One node of a [`SimNetwork`]: the [`Network`] a store's sockets are made
/// on.
#[derive(Clone, Debug)]
pub struct SimNode {
    network: SimNetwork,
    node: usize,
}

impl SimNode {
    /// The network this node is on.
    pub fn network(&self) -> &SimNetwork {
        &self.network
    }
}

impl Network for SimNode {
    fn socket(&self, _family: Family) -> io::Result<Box<dyn DatagramSocket>> {
        let mut state = self.network.lock();
        let id = state.next_socket;
        state.next_socket += 1;
        state.sockets.insert(
            id,
            SockState {
                node: self.node,
                local: None,
                peer: None,
                queue: VecDeque::new(),
                queued: 0,
                receive_buffer: DEFAULT_BUFFER,
                send_buffer: DEFAULT_BUFFER,
                send_queued: 0,
                hop_limit: 64,
                error: None,
                drops: 0,
                notify: Arc::new(Notify::new()),
                shared_port: false,
                memberships: Vec::new(),
                multicast_hops: 1,
                multicast_loop: true,
                broadcast: false,
            },
        );
        Ok(Box::new(SimSocket {
            network: self.network.clone(),
            id,
        }))
    }

    fn minimum_charge(&self) -> usize {
        2 * MINIMUM_BUFFER
    }

    fn charge_for_size(&self, size: usize) -> usize {
        size
    }

    fn size_for_charge(&self, charge: usize) -> usize {
        charge
    }
}

/// A socket on a [`SimNode`].
struct SimSocket {
    network: SimNetwork,
    id: u64,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSocket").field("id", &self.id).finish()
    }
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        let mut state = self.network.lock();
        if let Some(socket) = state.sockets.remove(&self.id)
            && let Some(local) = socket.local
        {
            state.unbind(socket.node, local, self.id);
        }
    }
}

fn errno(code: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(code.raw_os_error())
}

impl State {
    fn socket(&mut self, id: u64) -> io::Result<&mut SockState> {
        self.sockets
            .get_mut(&id)
            .ok_or_else(|| errno(rustix::io::Errno::BADF))
    }

    fn unbind(&mut self, node: usize, local: SocketAddr, id: u64) {
        if let Some(bound) = self.bindings.get_mut(&(node, local.port())) {
            bound.retain(|(_, socket)| *socket != id);
            if bound.is_empty() {
                self.bindings.remove(&(node, local.port()));
            }
        }
    }

    /// Whether `node` may bind `ip`: its own addresses, loopback, the
    /// unspecified address.
    fn owns(&self, node: usize, ip: IpAddr) -> bool {
        ip.is_unspecified() || ip.is_loopback() || self.nodes[node].contains(&ip)
    }

    /// The node `ip` belongs to, seen from `from`: loopback stays on the
    /// node.
    fn node_of(&self, from: usize, ip: IpAddr) -> Option<usize> {
        if ip.is_loopback() {
            return Some(from);
        }
        self.nodes
            .iter()
            .position(|addresses| addresses.contains(&ip))
    }

    /// Whether binding `ip:port` on `node` conflicts with a bound socket:
    /// one on the same or a wildcard address of the family, unless both
    /// share the port.
    fn port_taken(&self, node: usize, ip: IpAddr, port: u16, shared: bool) -> bool {
        self.bindings.get(&(node, port)).is_some_and(|bound| {
            bound.iter().any(|(other, id)| {
                other.is_ipv4() == ip.is_ipv4()
                    && (*other == ip || other.is_unspecified() || ip.is_unspecified())
                    && !(shared && self.sockets.get(id).is_some_and(|s| s.shared_port))
            })
        })
    }

    fn bind(&mut self, id: u64, addr: SocketAddr) -> io::Result<()> {
        let node = self.socket(id)?.node;
        let shared = self.socket(id)?.shared_port;
        if let SocketAddr::V6(v6) = addr
            && v6.ip().is_unicast_link_local()
            && v6.scope_id() == 0
        {
            // The link a link-local address is on cannot be told.
            return Err(errno(rustix::io::Errno::INVAL));
        }
        if !self.owns(node, addr.ip()) {
            return Err(errno(rustix::io::Errno::ADDRNOTAVAIL));
        }
        let port = if addr.port() == 0 {
            let start = self.next_port[node];
            let count = u16::MAX - FIRST_EPHEMERAL_PORT + 1;
            let port = (0..count)
                .map(|i| FIRST_EPHEMERAL_PORT + (start - FIRST_EPHEMERAL_PORT + i) % count)
                .find(|port| !self.port_taken(node, addr.ip(), *port, false))
                .ok_or_else(|| errno(rustix::io::Errno::ADDRINUSE))?;
            self.next_port[node] = if port == u16::MAX {
                FIRST_EPHEMERAL_PORT
            } else {
                port + 1
            };
            port
        } else if self.port_taken(node, addr.ip(), addr.port(), shared) {
            return Err(errno(rustix::io::Errno::ADDRINUSE));
        } else {
            addr.port()
        };
        let mut local = addr;
        local.set_port(port);
        self.bindings
            .entry((node, port))
            .or_default()
            .push((addr.ip(), id));
        self.socket(id)?.local = Some(local);
        Ok(())
    }

    /// The socket bound for `destination` on `node`: the exact address, or
    /// the family's unspecified one.
    fn listener(&self, node: usize, destination: SocketAddr) -> Option<u64> {
        let bound = self.bindings.get(&(node, destination.port()))?;
        bound
            .iter()
            .find(|(ip, _)| *ip == destination.ip())
            .or_else(|| {
                bound.iter().find(|(ip, _)| {
                    ip.is_unspecified() && ip.is_ipv4() == destination.ip().is_ipv4()
                })
            })
            .map(|(_, id)| *id)
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        let order = self.next_event;
        self.next_event += 1;
        self.events.insert((at, order), event);
    }

    /// Runs every event due by `now`, in order.
    fn advance(&mut self, now: Instant) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            match event {
                Event::Depart { socket, charge } => {
                    if let Some(socket) = self.sockets.get_mut(&socket) {
                        socket.send_queued = socket.send_queued.saturating_sub(charge);
                        socket.notify.notify_one();
                    }
                }
                Event::Arrive(packet) => self.arrive(at, packet),
            }
        }
    }

    /// When the next event is due, if any.
    fn next_due(&self) -> Option<Instant> {
        self.events.keys().next().map(|(at, _)| *at)
    }

    /// `packet` reaches its destination at `now`.
    fn arrive(&mut self, now: Instant, packet: Packet) {
        let from_node = packet
            .from_socket
            .and_then(|id| self.sockets.get(&id))
            .map(|socket| socket.node);
        if let Some(scope) = packet.scope {
            self.arrive_at_group(from_node, scope, &packet);
            return;
        }
        if let Some(handler) = self.endpoints.get_mut(&packet.destination) {
            self.stats.delivered += 1;
            let replies = handler(&packet.payload, packet.source);
            for reply in replies {
                self.transmit(
                    now,
                    None,
                    packet.destination,
                    packet.source,
                    reply,
                    Sending {
                        hop_limit: 64,
                        scope: None,
                    },
                );
            }
            return;
        }
        let Some(node) = self.node_of(from_node.unwrap_or(0), packet.destination.ip()) else {
            self.stats.no_such_host += 1;
            return;
        };
        let Some(id) = self.listener(node, packet.destination) else {
            self.stats.port_unreachable += 1;
            // ICMP port unreachable: reported to a sender connected to this
            // destination, as Linux does; ignored otherwise.
            if let Some(sender) = packet.from_socket.and_then(|id| self.sockets.get_mut(&id))
                && sender
                    .peer
                    .is_some_and(|peer| crate::peers::same_peer(peer, packet.destination))
            {
                sender.error = Some(rustix::io::Errno::CONNREFUSED.raw_os_error());
                sender.notify.notify_one();
            }
            return;
        };
        self.deliver(id, packet.payload, packet.source);
    }

    /// `packet`, sent to a group or a broadcast address, reaches every
    /// socket bound to its port (on the group's or a wildcard address)
    /// that is in the group (for multicast, admitting the source) or of
    /// IPv4 (for broadcast), on the nodes `scope` allows, in the order the
    /// sockets were made.
    fn arrive_at_group(&mut self, from_node: Option<usize>, scope: GroupScope, packet: &Packet) {
        let destination = packet.destination;
        let multicast = destination.ip().is_multicast();
        let mut members: Vec<u64> = self
            .sockets
            .iter()
            .filter(|(_, socket)| {
                let Some(local) = socket.local else {
                    return false;
                };
                let same_node = from_node == Some(socket.node);
                let node_allowed = if same_node {
                    scope.loop_back
                } else {
                    !scope.local_only
                };
                let address_matches = local.port() == destination.port()
                    && local.is_ipv4() == destination.is_ipv4()
                    && (local.ip() == destination.ip() || local.ip().is_unspecified());
                let member = !multicast
                    || socket.memberships.iter().any(|m| {
                        m.group == destination.ip()
                            && m.source.is_none_or(|source| source == packet.source.ip())
                    });
                node_allowed && address_matches && member
            })
            .map(|(id, _)| *id)
            .collect();
        members.sort_unstable();
        for id in members {
            self.deliver(id, packet.payload.clone(), packet.source);
        }
    }

    /// Queues `payload` from `source` on socket `id`, unless it is
    /// connected to someone else or its queue is full.
    fn deliver(&mut self, id: u64, payload: Vec<u8>, source: SocketAddr) {
        let Some(socket) = self.sockets.get_mut(&id) else {
            return;
        };
        // A connected socket hears only its peer.
        if socket
            .peer
            .is_some_and(|peer| !crate::peers::same_peer(peer, source))
        {
            return;
        }
        let charge = payload.len() + DATAGRAM_OVERHEAD;
        if socket.queued > socket.receive_buffer {
            self.stats.queue_full += 1;
            socket.drops = socket.drops.wrapping_add(1);
            return;
        }
        socket.queued += charge;
        socket.queue.push_back((payload, source));
        socket.notify.notify_one();
        self.stats.delivered += 1;
    }

    /// Sends one datagram from `source` (a socket's address, or an
    /// endpoint's) across the faults; `from` is the sending socket, whose
    /// send buffer holds it until it departs.
    fn transmit(
        &mut self,
        now: Instant,
        from: Option<u64>,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Vec<u8>,
        how: Sending,
    ) {
        let Sending { hop_limit, scope } = how;
        let faults = self
            .link_faults
            .iter()
            .find(|(a, b, _)| {
                (a.contains(source.ip()) && b.contains(destination.ip()))
                    || (b.contains(source.ip()) && a.contains(destination.ip()))
            })
            .map_or(self.faults, |(_, _, faults)| *faults);
        let link = (source.ip(), destination.ip());
        let free = self.link_free.get(&link).copied().unwrap_or(now).max(now);
        let depart = free;
        self.link_free
            .insert(link, depart + faults.serialization(payload.len()));
        let charge = payload.len() + DATAGRAM_OVERHEAD;
        if let Some(id) = from {
            self.schedule(depart, Event::Depart { socket: id, charge });
        }
        let since_start = depart.duration_since(self.start);
        if self
            .partitions
            .iter()
            .any(|p| p.separates(source.ip(), destination.ip(), since_start))
        {
            self.stats.partitioned += 1;
            return;
        }
        let header = if destination.is_ipv4() { 28 } else { 48 };
        if faults.mtu.is_some_and(|mtu| payload.len() + header > mtu) {
            self.stats.too_large_for_mtu += 1;
            return;
        }
        // A datagram that stays on its node crosses no hop.
        let local_only = scope.is_some_and(|scope| scope.local_only);
        if hop_limit < faults.hops && !local_only {
            self.stats.hop_limit_exceeded += 1;
            return;
        }
        if self.rng.chance(faults.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = faults.delay_for(&mut self.rng);
            if self.rng.chance(faults.reorder) {
                self.stats.reordered += 1;
                delay += faults.reorder_extra(&mut self.rng);
            }
            let packet = Packet {
                from_socket: from,
                source,
                destination,
                payload: payload.clone(),
                scope,
            };
            self.schedule(depart + delay, Event::Arrive(packet));
        }
    }

    /// The address datagrams from socket `id` carry as their source when
    /// sent to `destination`.
    fn source_for(&self, id: u64, destination: SocketAddr) -> io::Result<SocketAddr> {
        let socket = self
            .sockets
            .get(&id)
            .ok_or_else(|| errno(rustix::io::Errno::BADF))?;
        let local = socket
            .local
            .ok_or_else(|| errno(rustix::io::Errno::DESTADDRREQ))?;
        if !local.ip().is_unspecified() {
            return Ok(local);
        }
        let ip = if destination.ip().is_loopback() {
            match destination.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            }
        } else {
            *self.nodes[socket.node]
                .iter()
                .find(|ip| ip.is_ipv4() == destination.is_ipv4())
                .ok_or_else(|| errno(rustix::io::Errno::NETUNREACH))?
        };
        Ok(SocketAddr::new(ip, local.port()))
    }
}

type Ready<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl SimSocket {
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.network.lock();
        state.advance(Instant::now());
        state
    }

    fn notify(&self) -> Option<Arc<Notify>> {
        self.network
            .lock()
            .sockets
            .get(&self.id)
            .map(|socket| socket.notify.clone())
    }

    /// Waits until `ready` holds, on the network's clock.
    async fn wait_until(&self, ready: impl Fn(&SockState) -> bool) {
        let Some(notify) = self.notify() else {
            return;
        };
        loop {
            let next = {
                let state = self.lock();
                match state.sockets.get(&self.id) {
                    Some(socket) if !ready(socket) => state.next_due(),
                    _ => return,
                }
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = notify.notified() => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notify.notified().await,
            }
        }
    }
}

impl DatagramSocket for SimSocket {
    fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.lock().bind(self.id, addr)
    }

    fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        socket.peer = Some(peer);
        // Datagrams from others queued before stay (the provider drops
        // them, as it must with a kernel that keeps them too).
        Ok(())
    }

    fn disconnect(&self) -> io::Result<()> {
        self.lock().socket(self.id)?.peer = None;
        Ok(())
    }

    fn kernel_drops(&self) -> Option<u32> {
        Some(self.lock().socket(self.id).ok()?.drops)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.lock()
            .socket(self.id)?
            .local
            .ok_or_else(|| errno(rustix::io::Errno::INVAL))
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.lock().socket(self.id).ok()?.peer
    }

    fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome {
        let now = Instant::now();
        let mut state = self.lock();
        let mut sent = 0;
        for transmit in batch {
            let outcome = |error| SendOutcome {
                sent,
                error: Some(error),
                buffer_full: false,
            };
            let Ok(socket) = state.socket(self.id) else {
                return outcome(errno(rustix::io::Errno::BADF));
            };
            if let Some(code) = socket.error.take() {
                return outcome(io::Error::from_raw_os_error(code));
            }
            let Some(destination) = transmit.destination.or(socket.peer) else {
                return outcome(errno(rustix::io::Errno::DESTADDRREQ));
            };
            let largest = if destination.is_ipv4() {
                65_507
            } else {
                65_527
            };
            if transmit.payload.len() > largest {
                return outcome(errno(rustix::io::Errno::MSGSIZE));
            }
            let broadcast = match destination.ip() {
                IpAddr::V4(v4) => v4.is_broadcast(),
                IpAddr::V6(_) => false,
            };
            if broadcast && !socket.broadcast {
                // As Linux: a broadcast needs SO_BROADCAST.
                return outcome(errno(rustix::io::Errno::ACCESS));
            }
            if socket.send_queued >= socket.send_buffer {
                return SendOutcome {
                    sent,
                    error: None,
                    buffer_full: true,
                };
            }
            socket.send_queued += transmit.payload.len() + DATAGRAM_OVERHEAD;
            let (hop_limit, scope) = if destination.ip().is_multicast() {
                let scope = GroupScope {
                    loop_back: socket.multicast_loop,
                    local_only: socket.multicast_hops == 0,
                };
                (socket.multicast_hops, Some(scope))
            } else if broadcast {
                let scope = GroupScope {
                    loop_back: true,
                    local_only: false,
                };
                (socket.hop_limit, Some(scope))
            } else {
                (socket.hop_limit, None)
            };
            let source = match state.source_for(self.id, destination) {
                Ok(source) => source,
                Err(error) => return outcome(error),
            };
            state.transmit(
                now,
                Some(self.id),
                source,
                destination,
                transmit.payload.to_vec(),
                Sending { hop_limit, scope },
            );
            // What is due now (no delay, a free link) happens now.
            state.advance(now);
            sent += 1;
        }
        SendOutcome {
            sent,
            error: None,
            buffer_full: false,
        }
    }

    fn try_receive_batch(
        &self,
        slots: &mut ReceiveSlots,
        max: usize,
        landed: &mut Vec<Received>,
    ) -> io::Result<()> {
        landed.clear();
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        let max = max.min(slots.count());
        if socket.queue.is_empty()
            && let Some(code) = socket.error.take()
        {
            return Err(io::Error::from_raw_os_error(code));
        }
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some((payload, source)) = socket.queue.pop_front() else {
                break;
            };
            socket.queued = socket
                .queued
                .saturating_sub(payload.len() + DATAGRAM_OVERHEAD);
            taken.push((payload, source));
        }
        if socket.drops > 0 {
            slots.note_kernel_drops(socket.drops);
        }
        drop(state);
        for (slot, ((payload, source), buffer)) in
            taken.iter().zip(slots.slots_mut(taken.len())).enumerate()
        {
            buffer[..payload.len()].copy_from_slice(payload);
            landed.push(Received {
                offset: 0,
                slot,
                len: payload.len(),
                source: *source,
            });
        }
        Ok(())
    }

    fn send_ready(&self) -> Ready<'_> {
        Box::pin(
            self.wait_until(|socket| {
                socket.send_queued < socket.send_buffer || socket.error.is_some()
            }),
        )
    }

    fn receive_ready(&self) -> Ready<'_> {
        Box::pin(self.wait_until(|socket| !socket.queue.is_empty() || socket.error.is_some()))
    }

    fn writable_now(&self) -> bool {
        self.lock()
            .sockets
            .get(&self.id)
            .is_none_or(|socket| socket.send_queued < socket.send_buffer)
    }

    fn send_capacity(&self, payload_len: usize) -> usize {
        self.lock().sockets.get(&self.id).map_or(1, |socket| {
            socket.send_buffer.saturating_sub(socket.send_queued)
                / (payload_len + DATAGRAM_OVERHEAD)
        })
    }

    fn hop_limit(&self) -> io::Result<u8> {
        Ok(self.lock().socket(self.id)?.hop_limit)
    }

    fn set_hop_limit(&self, value: u8) -> io::Result<()> {
        self.lock().socket(self.id)?.hop_limit = value;
        Ok(())
    }

    fn receive_buffer_size(&self) -> io::Result<usize> {
        Ok(self.lock().socket(self.id)?.receive_buffer)
    }

    fn set_receive_buffer_size(&self, size: usize) -> io::Result<()> {
        self.lock().socket(self.id)?.receive_buffer = size.max(MINIMUM_BUFFER);
        Ok(())
    }

    fn send_buffer_size(&self) -> io::Result<usize> {
        Ok(self.lock().socket(self.id)?.send_buffer)
    }

    fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        socket.send_buffer = size.max(MINIMUM_BUFFER);
        socket.notify.notify_one();
        Ok(())
    }

    fn buffer_charges(&self) -> io::Result<(usize, usize)> {
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        Ok((socket.receive_buffer, socket.send_buffer))
    }

    fn shared_port(&self) -> io::Result<bool> {
        Ok(self.lock().socket(self.id)?.shared_port)
    }

    fn set_shared_port(&self, shared: bool) -> io::Result<()> {
        self.lock().socket(self.id)?.shared_port = shared;
        Ok(())
    }

    /// The simulated network has no interfaces to choose from: index 0 is
    /// the only one.
    fn join_group(&self, membership: &Membership) -> io::Result<()> {
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        if membership.interface != 0 {
            return Err(errno(rustix::io::Errno::NODEV));
        }
        if socket.memberships.contains(membership) {
            return Err(errno(rustix::io::Errno::ADDRINUSE));
        }
        if socket.memberships.len() >= MAX_MEMBERSHIPS {
            return Err(errno(rustix::io::Errno::NOBUFS));
        }
        socket.memberships.push(*membership);
        Ok(())
    }

    fn leave_group(&self, membership: &Membership) -> io::Result<()> {
        let mut state = self.lock();
        let socket = state.socket(self.id)?;
        let before = socket.memberships.len();
        socket.memberships.retain(|m| m != membership);
        if socket.memberships.len() == before {
            return Err(errno(rustix::io::Errno::ADDRNOTAVAIL));
        }
        Ok(())
    }

    fn multicast_hop_limit(&self) -> io::Result<u8> {
        Ok(self.lock().socket(self.id)?.multicast_hops)
    }

    fn set_multicast_hop_limit(&self, value: u8) -> io::Result<()> {
        self.lock().socket(self.id)?.multicast_hops = value;
        Ok(())
    }

    fn multicast_loopback(&self) -> io::Result<bool> {
        Ok(self.lock().socket(self.id)?.multicast_loop)
    }

    fn set_multicast_loopback(&self, enabled: bool) -> io::Result<()> {
        self.lock().socket(self.id)?.multicast_loop = enabled;
        Ok(())
    }

    fn set_multicast_interface(&self, index: u32) -> io::Result<()> {
        self.lock().socket(self.id)?;
        if index != 0 {
            return Err(errno(rustix::io::Errno::NODEV));
        }
        Ok(())
    }

    fn broadcast(&self) -> io::Result<bool> {
        Ok(self.lock().socket(self.id)?.broadcast)
    }

    fn set_broadcast(&self, enabled: bool) -> io::Result<()> {
        self.lock().socket(self.id)?.broadcast = enabled;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    fn send(socket: &dyn DatagramSocket, to: &str, payload: &[u8]) -> SendOutcome {
        socket.try_send_batch(&[Transmit {
            destination: Some(addr(to)),
            payload,
        }])
    }

    fn receive_all(socket: &dyn DatagramSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut slots = ReceiveSlots::new(8);
        let mut landed = Vec::new();
        socket
            .try_receive_batch(&mut slots, 8, &mut landed)
            .expect("receive");
        landed
            .iter()
            .map(|r| (slots.datagram(r).to_vec(), r.source))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_talk_across_the_network_and_keep_loopback_to_themselves() {
        let network = SimNetwork::new(1);
        let a = network.node(["10.0.0.1".parse().expect("ip")]);
        let b = network.node(["10.0.0.2".parse().expect("ip")]);
        let server = b.socket(Family::Ipv4).expect("socket");
        server.bind(addr("0.0.0.0:53")).expect("bind");
        let client = a.socket(Family::Ipv4).expect("socket");
        client.bind(addr("0.0.0.0:0")).expect("bind");
        assert_eq!(send(client.as_ref(), "10.0.0.2:53", b"query").sent, 1);
        let got = receive_all(server.as_ref());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.ip(), "10.0.0.1".parse::<IpAddr>().expect("ip"));
        // A's loopback is not B's.
        let local = a.socket(Family::Ipv4).expect("socket");
        local
            .bind(addr("127.0.0.1:5353"))
            .expect("bind on a's loopback");
        let other = b.socket(Family::Ipv4).expect("socket");
        other
            .bind(addr("127.0.0.1:5353"))
            .expect("b has its own loopback");
        // On one node a wildcard binding takes the port on every address.
        let shadow = b.socket(Family::Ipv4).expect("socket");
        let error = shadow
            .bind(addr("127.0.0.1:53"))
            .expect_err("0.0.0.0:53 holds it");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::ADDRINUSE.raw_os_error())
        );
        // An address no node has cannot be bound.
        let stray = a.socket(Family::Ipv4).expect("socket");
        let error = stray.bind(addr("192.0.2.1:0")).expect_err("not a's");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
        );
        let error = stray.bind(addr("127.0.0.1:5353")).expect_err("taken");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::ADDRINUSE.raw_os_error())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_virtual_time_and_readiness_waits_for_it() {
        let network = SimNetwork::new(1);
        network
            .set_faults(Faults::none().delay(Duration::from_millis(40), Duration::from_millis(40)));
        let node = network.node([]);
        let rx = node.socket(Family::Ipv4).expect("socket");
        rx.bind(addr("127.0.0.1:0")).expect("bind");
        let to = rx.local_addr().expect("addr").to_string();
        let tx = node.socket(Family::Ipv4).expect("socket");
        tx.bind(addr("127.0.0.1:0")).expect("bind");
        let started = Instant::now();
        send(tx.as_ref(), &to, b"later");
        assert!(receive_all(rx.as_ref()).is_empty(), "not yet");
        rx.receive_ready().await;
        assert_eq!(started.elapsed(), Duration::from_millis(40));
        assert_eq!(receive_all(rx.as_ref())[0].0, b"later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_port_is_refused_to_a_connected_sender_only() {
        let network = SimNetwork::new(1);
        let node = network.node([]);
        let connected = node.socket(Family::Ipv4).expect("socket");
        connected.bind(addr("127.0.0.1:0")).expect("bind");
        connected.connect(addr("127.0.0.1:9")).expect("connect");
        connected.try_send_batch(&[Transmit {
            destination: None,
            payload: b"anyone?",
        }]);
        let mut slots = ReceiveSlots::new(1);
        let mut landed = Vec::new();
        let error = connected
            .try_receive_batch(&mut slots, 1, &mut landed)
            .expect_err("refused");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::CONNREFUSED.raw_os_error())
        );
        let unconnected = node.socket(Family::Ipv4).expect("socket");
        unconnected.bind(addr("127.0.0.1:0")).expect("bind");
        send(unconnected.as_ref(), "127.0.0.1:9", b"anyone?");
        assert!(receive_all(unconnected.as_ref()).is_empty());
        assert_eq!(network.stats().port_unreachable, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_link_fills_the_send_buffer_and_room_returns_in_time() {
        let network = SimNetwork::new(1);
        network.set_faults(Faults::none().rate(100));
        let node = network.node([]);
        let tx = node.socket(Family::Ipv4).expect("socket");
        tx.bind(addr("127.0.0.1:0")).expect("bind");
        tx.set_send_buffer_size(4 * (64 + DATAGRAM_OVERHEAD))
            .expect("size");
        let payload = [0u8; 64];
        let batch: Vec<Transmit<'_>> = (0..10)
            .map(|_| Transmit {
                destination: Some(addr("127.0.0.1:9")),
                payload: &payload,
            })
            .collect();
        let outcome = tx.try_send_batch(&batch);
        assert!(outcome.buffer_full, "{outcome:?}");
        assert!(!tx.writable_now());
        let started = Instant::now();
        tx.send_ready().await;
        // One datagram departs every 10 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(10));
        assert!(tx.writable_now());
    }

    #[tokio::test(start_paused = true)]
    async fn faults_are_drawn_from_the_seed() {
        let run = |seed| {
            let network = SimNetwork::new(seed);
            network.set_faults(Faults::none().loss(0.3).duplicate(0.1));
            let node = network.node([]);
            let rx = node.socket(Family::Ipv4).expect("socket");
            rx.bind(addr("127.0.0.1:0")).expect("bind");
            rx.set_receive_buffer_size(1 << 20).expect("size");
            let to = rx.local_addr().expect("addr").to_string();
            let tx = node.socket(Family::Ipv4).expect("socket");
            tx.bind(addr("127.0.0.1:0")).expect("bind");
            for i in 0..200u8 {
                send(tx.as_ref(), &to, &[i]);
            }
            let mut got = Vec::new();
            loop {
                let batch = receive_all(rx.as_ref());
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|(data, _)| data[0]));
            }
            (got, network.stats())
        };
        let (first, stats) = run(42);
        assert_eq!(run(42).0, first, "the same seed, the same datagrams");
        assert_ne!(run(43).0, first);
        assert!((40..=80).contains(&stats.lost), "{stats:?}");
        assert!(stats.duplicated > 0, "{stats:?}");
        assert_eq!(first.len() as u64, 200 - stats.lost + stats.duplicated);
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_start_and_heal_and_endpoints_answer() {
        let network = SimNetwork::new(1);
        let net = |text: &str| text.parse::<crate::policy::IpNet>().expect("net");
        network.add_partition(Partition {
            a: net("10.0.0.1"),
            b: net("10.0.0.53"),
            from: Duration::from_secs(1),
            until: Duration::from_secs(2),
        });
        network.add_endpoint(addr("10.0.0.53:7"), |payload, _| vec![payload.to_vec()]);
        let node = network.node(["10.0.0.1".parse().expect("ip")]);
        let socket = node.socket(Family::Ipv4).expect("socket");
        socket.bind(addr("10.0.0.1:0")).expect("bind");
        let exchange = |socket: &dyn DatagramSocket| {
            send(socket, "10.0.0.53:7", b"ping");
            receive_all(socket).len()
        };
        assert_eq!(exchange(socket.as_ref()), 1, "before the partition");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(exchange(socket.as_ref()), 0, "during it");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(exchange(socket.as_ref()), 1, "healed");
        assert_eq!(network.stats().partitioned, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn groups_reach_their_members_as_their_options_say() {
        let network = SimNetwork::new(1);
        let here = network.node(["10.0.0.1".parse().expect("ip")]);
        let there = network.node(["10.0.0.2".parse().expect("ip")]);
        let group: IpAddr = "239.1.1.1".parse().expect("group");
        let member = |node: &SimNode, source: Option<&str>| {
            let socket = node.socket(Family::Ipv4).expect("socket");
            socket.set_shared_port(true).expect("share");
            socket.bind(addr("0.0.0.0:7000")).expect("bind");
            let membership = Membership {
                group,
                source: source.map(|s| s.parse().expect("source")),
                interface: 0,
            };
            socket.join_group(&membership).expect("join");
            assert_eq!(
                socket.join_group(&membership).map_err(|e| e.raw_os_error()),
                Err(Some(rustix::io::Errno::ADDRINUSE.raw_os_error()))
            );
            socket
        };
        let local = member(&here, None);
        let remote = member(&there, None);
        let remote_from_elsewhere = member(&there, Some("10.0.0.9"));
        let not_member = there.socket(Family::Ipv4).expect("socket");
        not_member.set_shared_port(true).expect("share");
        not_member.bind(addr("0.0.0.0:7000")).expect("bind");

        let sender = here.socket(Family::Ipv4).expect("socket");
        sender.bind(addr("0.0.0.0:0")).expect("bind");
        send(sender.as_ref(), "239.1.1.1:7000", b"all");
        assert_eq!(receive_all(local.as_ref()).len(), 1);
        let heard = receive_all(remote.as_ref());
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].1.ip(), "10.0.0.1".parse::<IpAddr>().expect("ip"));
        assert!(receive_all(remote_from_elsewhere.as_ref()).is_empty());
        assert!(receive_all(not_member.as_ref()).is_empty());

        // Loopback off: the sender's own node hears nothing.
        sender.set_multicast_loopback(false).expect("loopback");
        send(sender.as_ref(), "239.1.1.1:7000", b"away");
        assert!(receive_all(local.as_ref()).is_empty());
        assert_eq!(receive_all(remote.as_ref()).len(), 1);
        // Hop limit 0: only the sender's own node.
        sender.set_multicast_loopback(true).expect("loopback");
        sender.set_multicast_hop_limit(0).expect("hops");
        send(sender.as_ref(), "239.1.1.1:7000", b"home");
        assert_eq!(receive_all(local.as_ref()).len(), 1);
        assert!(receive_all(remote.as_ref()).is_empty());

        // Leaving stops delivery; leaving twice is an error.
        let membership = Membership {
            group,
            source: None,
            interface: 0,
        };
        remote.leave_group(&membership).expect("leave");
        assert!(remote.leave_group(&membership).is_err());
        sender.set_multicast_hop_limit(1).expect("hops");
        send(sender.as_ref(), "239.1.1.1:7000", b"again");
        assert!(receive_all(remote.as_ref()).is_empty());

        // The group limit, as Linux's default.
        let busy = here.socket(Family::Ipv4).expect("socket");
        for i in 0..MAX_MEMBERSHIPS {
            let membership = Membership {
                group: IpAddr::V4(Ipv4Addr::new(239, 2, 0, i as u8)),
                source: None,
                interface: 0,
            };
            busy.join_group(&membership).expect("join");
        }
        let one_more = Membership {
            group: IpAddr::V4(Ipv4Addr::new(239, 3, 0, 0)),
            source: None,
            interface: 0,
        };
        assert_eq!(
            busy.join_group(&one_more).map_err(|e| e.raw_os_error()),
            Err(Some(rustix::io::Errno::NOBUFS.raw_os_error()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_needs_the_option_and_reaches_every_node() {
        let network = SimNetwork::new(1);
        let here = network.node(["10.0.0.1".parse().expect("ip")]);
        let there = network.node(["10.0.0.2".parse().expect("ip")]);
        let listeners: Vec<_> = [&here, &there]
            .into_iter()
            .map(|node| {
                let socket = node.socket(Family::Ipv4).expect("socket");
                socket.bind(addr("0.0.0.0:6000")).expect("bind");
                socket
            })
            .collect();
        let sender = here.socket(Family::Ipv4).expect("socket");
        sender.bind(addr("0.0.0.0:0")).expect("bind");
        let refused = send(sender.as_ref(), "255.255.255.255:6000", b"x");
        assert_eq!(
            refused.error.and_then(|e| e.raw_os_error()),
            Some(rustix::io::Errno::ACCESS.raw_os_error())
        );
        sender.set_broadcast(true).expect("broadcast");
        assert_eq!(send(sender.as_ref(), "255.255.255.255:6000", b"x").sent, 1);
        for listener in &listeners {
            assert_eq!(receive_all(listener.as_ref()).len(), 1);
        }
        // A port is shared only when every socket on it shares it.
        let unshared = here.socket(Family::Ipv4).expect("socket");
        unshared.set_shared_port(true).expect("share");
        assert!(unshared.bind(addr("0.0.0.0:6000")).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_mtu_and_the_hop_limit_drop_what_does_not_fit() {
        let network = SimNetwork::new(1);
        network.set_faults(Faults::none().mtu(100).hops(3));
        let node = network.node([]);
        let rx = node.socket(Family::Ipv4).expect("socket");
        rx.bind(addr("127.0.0.1:0")).expect("bind");
        let to = rx.local_addr().expect("addr").to_string();
        let tx = node.socket(Family::Ipv4).expect("socket");
        tx.bind(addr("127.0.0.1:0")).expect("bind");
        send(tx.as_ref(), &to, &[0; 72]);
        send(tx.as_ref(), &to, &[0; 73]);
        tx.set_hop_limit(2).expect("hop limit");
        send(tx.as_ref(), &to, &[0; 10]);
        assert_eq!(receive_all(rx.as_ref()).len(), 1);
        let stats = network.stats();
        assert_eq!((stats.too_large_for_mtu, stats.hop_limit_exceeded), (1, 1));
    }
}
