//! Arbitrary sequences of operations on the `wasi-udp-host` provider,
//! called through the same `Host*` traits a guest's calls land in, with a
//! model of what each call must do. [`run`] takes raw bytes, as a fuzzer
//! hands them over; the `fuzz/` crate wraps it for `cargo fuzz`, and this
//! crate's test runs a bounded number of seeded inputs in CI.
//!
//! What a run checks, after every operation:
//! - nothing panics, whatever the handles and arguments (stale, foreign,
//!   made-up handles included);
//! - the store's live-socket count equals the model's: a socket is live
//!   while its handle, a stream or a stream's pollable is;
//! - `local-address` succeeds exactly when the socket is bound, and
//!   `finish-bind` exactly after a successful `start-bind`;
//! - `stream` traps exactly when streams of the previous call are alive,
//!   and is `invalid-state` on an unbound socket;
//! - `send` traps exactly when no `check-send` preceded it or it carries
//!   more than was permitted, and a permit is spent by the send it permits;
//! - `receive(max)` returns at most `max` and at most the store's batch cap;
//! - the `wasi-udp:extensions` calls never trap: joining is refused (the
//!   policy grants no group), leaving a group never joined is an error,
//!   and the port can be shared exactly while the socket is unbound;
//!
//! and at the end, once everything is dropped, that no socket is live.

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::{Arbitrary, Unstructured};
use wasi_udp_host::bindings::wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi_udp_host::bindings::wasi::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, OutgoingDatagram,
};
use wasi_udp_host::bindings::wasi::sockets::udp_create_socket::Host as _;
use wasi_udp_host::{SocketResult, UdpCtx, UdpView, WasiUdpState};
use wasmtime::component::Resource;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::bindings::sockets::instance_network::Host as _;
use wasmtime_wasi::sockets::WasiSocketsView;
use wasmtime_wasi_io::bindings::wasi::io::poll::HostPollable;

/// Most operations one input runs, so every run is short.
pub const MAX_OPERATIONS: usize = 200;
/// The store's socket limit during a run (small, so the limit is reached).
pub const MAX_SOCKETS: usize = 8;
/// The store's receive batch cap during a run.
pub const MAX_RECEIVE_BATCH: usize = 16;

/// An address an operation uses.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Address {
    Loopback4(u16),
    Loopback6(u16),
    Unspecified4(u16),
    Unspecified6,
    /// `::ffff:127.0.0.1`, which no socket may use.
    Mapped(u16),
    /// TEST-NET-1: bindable by policy, absent from every interface.
    TestNet(u8),
    /// The local address of the n-th socket, if it is bound.
    Socket(u8),
    /// Anywhere at all (the policy refuses all but loopback).
    Any4(u32, u16),
}

/// A `wasi-udp:extensions` call.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ExtensionCall {
    /// Join (or leave) a group, for any source or one.
    Membership {
        join: bool,
        group: Address,
        source: Option<Address>,
        interface: u32,
    },
    MulticastHopLimit(u8),
    MulticastLoopback(bool),
    MulticastInterface(u32),
    Broadcast(bool),
    SharedPort(bool),
}

#[derive(Debug)]
enum Op {
    Create {
        ipv6: bool,
    },
    StartBind {
        socket: u8,
        address: Address,
    },
    FinishBind {
        socket: u8,
    },
    Stream {
        socket: u8,
        remote: Option<Address>,
    },
    LocalAddress {
        socket: u8,
    },
    RemoteAddress {
        socket: u8,
    },
    HopLimit {
        socket: u8,
        value: u8,
    },
    ReceiveBufferSize {
        socket: u8,
        value: u64,
    },
    SendBufferSize {
        socket: u8,
        value: u64,
    },
    SubscribeSocket {
        socket: u8,
    },
    DropSocket {
        socket: u8,
    },
    CheckSend {
        stream: u8,
    },
    Send {
        stream: u8,
        datagrams: Vec<(u16, Option<Address>)>,
    },
    /// `start-bind` and `finish-bind` together, as most guests do.
    Bind {
        socket: u8,
        address: Address,
    },
    /// `check-send`, then a `send` of what it permitted, as most guests do.
    CheckAndSend {
        stream: u8,
        datagrams: Vec<(u16, Option<Address>)>,
    },
    Receive {
        stream: u8,
        max: u64,
    },
    Extension {
        socket: u8,
        call: ExtensionCall,
    },
    SubscribeIncoming {
        stream: u8,
    },
    SubscribeOutgoing {
        stream: u8,
    },
    DropIncoming {
        stream: u8,
    },
    DropOutgoing {
        stream: u8,
    },
    Poll {
        pollable: u8,
    },
    DropPollable {
        pollable: u8,
    },
    /// A call with a handle the store never gave out (or gave out for a
    /// different resource type).
    MadeUpHandle {
        rep: u32,
        call: u8,
    },
}

impl Op {
    /// The next operation, weighted towards what real guests do most
    /// (bind, stream, check-send and send, receive), so that sequences get
    /// past setting up; every operation stays reachable.
    fn next(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let datagrams =
            |u: &mut Unstructured<'_>| -> arbitrary::Result<Vec<(u16, Option<Address>)>> {
                let count = u.int_in_range(0..=12)?;
                (0..count).map(|_| u.arbitrary()).collect()
            };
        Ok(match u.int_in_range(0..=99)? {
            0..=7 => Op::Create {
                ipv6: u.ratio(1, 4)?,
            },
            8..=17 => Op::Bind {
                socket: u.arbitrary()?,
                address: u.arbitrary()?,
            },
            18..=19 => Op::StartBind {
                socket: u.arbitrary()?,
                address: u.arbitrary()?,
            },
            20..=21 => Op::FinishBind {
                socket: u.arbitrary()?,
            },
            22..=29 => Op::Stream {
                socket: u.arbitrary()?,
                remote: u.arbitrary()?,
            },
            30..=31 => Op::LocalAddress {
                socket: u.arbitrary()?,
            },
            32 => Op::RemoteAddress {
                socket: u.arbitrary()?,
            },
            33 => Op::HopLimit {
                socket: u.arbitrary()?,
                value: u.arbitrary()?,
            },
            34 => Op::ReceiveBufferSize {
                socket: u.arbitrary()?,
                value: u.arbitrary()?,
            },
            35 => Op::SendBufferSize {
                socket: u.arbitrary()?,
                value: u.arbitrary()?,
            },
            36 => Op::SubscribeSocket {
                socket: u.arbitrary()?,
            },
            37..=39 => Op::DropSocket {
                socket: u.arbitrary()?,
            },
            40..=43 => Op::CheckSend {
                stream: u.arbitrary()?,
            },
            44..=47 => Op::Send {
                stream: u.arbitrary()?,
                datagrams: datagrams(u)?,
            },
            48..=49 => Op::Extension {
                socket: u.arbitrary()?,
                call: u.arbitrary()?,
            },
            50..=63 => Op::CheckAndSend {
                stream: u.arbitrary()?,
                datagrams: datagrams(u)?,
            },
            64..=75 => Op::Receive {
                stream: u.arbitrary()?,
                max: u.int_in_range(0..=40)?,
            },
            76 => Op::Receive {
                stream: u.arbitrary()?,
                max: u.arbitrary()?,
            },
            77..=79 => Op::SubscribeIncoming {
                stream: u.arbitrary()?,
            },
            80..=81 => Op::SubscribeOutgoing {
                stream: u.arbitrary()?,
            },
            82..=84 => Op::DropIncoming {
                stream: u.arbitrary()?,
            },
            85..=87 => Op::DropOutgoing {
                stream: u.arbitrary()?,
            },
            88..=92 => Op::Poll {
                pollable: u.arbitrary()?,
            },
            93..=95 => Op::DropPollable {
                pollable: u.arbitrary()?,
            },
            _ => Op::MadeUpHandle {
                rep: u.arbitrary()?,
                call: u.arbitrary()?,
            },
        })
    }
}

/// The model of one socket.
#[derive(Debug)]
struct SocketModel {
    rep: u32,
    family: IpAddressFamily,
    handle_alive: bool,
    bind_started: bool,
    bound: bool,
    /// Streams and stream pollables alive, from any `stream` call.
    holders: usize,
    /// Streams alive from the latest `stream` call.
    latest_streams: usize,
    generation: u64,
}

impl SocketModel {
    fn live(&self) -> bool {
        self.handle_alive || self.holders > 0
    }
}

#[derive(Debug)]
struct StreamModel {
    rep: u32,
    socket: usize,
    generation: u64,
    /// What the last check-send permitted, until a send spends it
    /// (outgoing streams only).
    permit: Option<u64>,
}

#[derive(Debug)]
struct PollableModel {
    rep: u32,
    /// The socket it keeps alive, for stream pollables.
    holds: Option<usize>,
}

#[derive(Default)]
struct Model {
    sockets: Vec<SocketModel>,
    incoming: Vec<StreamModel>,
    outgoing: Vec<StreamModel>,
    pollables: Vec<PollableModel>,
}

impl Model {
    fn live_sockets(&self) -> usize {
        self.sockets.iter().filter(|s| s.live()).count()
    }

    fn release(&mut self, socket: usize, generation: u64, stream: bool) {
        let model = &mut self.sockets[socket];
        model.holders -= 1;
        if stream && generation == model.generation {
            model.latest_streams -= 1;
        }
    }
}

fn pick<T>(items: &[T], index: u8) -> Option<usize> {
    (!items.is_empty()).then(|| usize::from(index) % items.len())
}

fn is_trap<T>(result: &SocketResult<T>) -> bool {
    matches!(result, Err(error) if error.code().is_none())
}

fn code<T>(result: &SocketResult<T>) -> Option<ErrorCode> {
    result.as_ref().err().and_then(|error| error.code())
}

fn v4(ip: Ipv4Addr, port: u16) -> IpSocketAddress {
    let [a, b, c, d] = ip.octets();
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port,
        address: (a, b, c, d),
    })
}

fn v6(ip: Ipv6Addr, port: u16) -> IpSocketAddress {
    let [a, b, c, d, e, f, g, h] = ip.segments();
    IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port,
        flow_info: 0,
        address: (a, b, c, d, e, f, g, h),
        scope_id: 0,
    })
}

fn from_std(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => v4(*a.ip(), a.port()),
        SocketAddr::V6(a) => v6(*a.ip(), a.port()),
    }
}

/// The policy every run grants: loopback, wildcard binds, and binding to
/// TEST-NET-1. Nothing leaves the machine.
fn udp_ctx() -> UdpCtx {
    UdpCtx::builder()
        .allow_loopback()
        .allow("bind:192.0.2.0/24".parse().expect("rule"))
        .max_sockets(MAX_SOCKETS)
        .max_receive_batch(MAX_RECEIVE_BATCH)
        .build()
}

struct Runner {
    state: WasiUdpState,
    model: Model,
    network: u32,
}

impl Runner {
    fn new() -> Self {
        let mut state = WasiUdpState::new(WasiCtx::builder().build(), udp_ctx());
        let network = state
            .sockets()
            .instance_network()
            .expect("instance-network")
            .rep();
        Self {
            state,
            model: Model::default(),
            network,
        }
    }

    fn address(&mut self, address: Address) -> IpSocketAddress {
        match address {
            Address::Loopback4(port) => v4(Ipv4Addr::LOCALHOST, port),
            Address::Loopback6(port) => v6(Ipv6Addr::LOCALHOST, port),
            Address::Unspecified4(port) => v4(Ipv4Addr::UNSPECIFIED, port),
            Address::Unspecified6 => v6(Ipv6Addr::UNSPECIFIED, 0),
            Address::Mapped(port) => v6(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port),
            Address::TestNet(host) => v4(Ipv4Addr::new(192, 0, 2, host), 0),
            Address::Any4(ip, port) => v4(Ipv4Addr::from(ip), port),
            Address::Socket(index) => {
                let bound = pick(&self.model.sockets, index)
                    .map(|i| &self.model.sockets[i])
                    .filter(|s| s.bound && s.handle_alive)
                    .map(|s| s.rep);
                let local = bound.and_then(|rep| {
                    self.state
                        .udp()
                        .local_address(Resource::new_borrow(rep))
                        .ok()
                });
                local.unwrap_or_else(|| from_std("127.0.0.1:9".parse().expect("addr")))
            }
        }
    }

    /// A live socket handle, chosen by `index`.
    /// Runs one `wasi-udp:extensions` call and checks it against the
    /// model.
    fn extension(&mut self, socket: u8, call: ExtensionCall) {
        use wasi_udp_host::bindings::wasi_udp::extensions::udp_extensions::Host as _;
        let Some(i) = self.socket(socket) else { return };
        let rep = self.model.sockets[i].rep;
        let ip = |address: Address, this: &mut Self| match this.address(address) {
            IpSocketAddress::Ipv4(v4) => wasi_udp_host::bindings::IpAddress::Ipv4(v4.address),
            IpSocketAddress::Ipv6(v6) => wasi_udp_host::bindings::IpAddress::Ipv6(v6.address),
        };
        let this = || Resource::new_borrow(rep);
        let result: SocketResult<()> = match call {
            ExtensionCall::Membership {
                join,
                group,
                source,
                interface,
            } => {
                let group = ip(group, self);
                let source = source.map(|source| ip(source, self));
                let mut udp = self.state.udp();
                let result = match (join, source) {
                    (true, None) => poll_once(udp.join_multicast_group(this(), group, interface)),
                    (true, Some(source)) => {
                        poll_once(udp.join_source_specific_group(this(), group, source, interface))
                    }
                    (false, None) => udp.leave_multicast_group(this(), group, interface),
                    (false, Some(source)) => {
                        udp.leave_source_specific_group(this(), group, source, interface)
                    }
                };
                // No rule grants a group, so no join succeeds (each fails
                // before the kernel is asked), and no group is left.
                assert!(result.is_err(), "{call:?} succeeded without a join rule");
                result
            }
            ExtensionCall::MulticastHopLimit(value) => {
                let mut udp = self.state.udp();
                let set = udp.set_multicast_hop_limit(this(), value);
                assert!(set.is_ok(), "multicast hop limit {value}: {set:?}");
                assert_eq!(udp.multicast_hop_limit(this()).ok(), Some(value));
                set
            }
            ExtensionCall::MulticastLoopback(enabled) => {
                let mut udp = self.state.udp();
                let set = udp.set_multicast_loopback(this(), enabled);
                assert_eq!(udp.multicast_loopback(this()).ok(), Some(enabled));
                set
            }
            ExtensionCall::MulticastInterface(index) => {
                let set = self.state.udp().set_multicast_interface(this(), index);
                if index == 0 {
                    assert!(set.is_ok(), "interface 0: {set:?}");
                }
                set
            }
            ExtensionCall::Broadcast(enabled) => {
                let mut udp = self.state.udp();
                let set = udp.set_broadcast(this(), enabled);
                assert_eq!(udp.broadcast(this()).ok(), Some(enabled));
                set
            }
            ExtensionCall::SharedPort(enabled) => {
                let unbound = !self.model.sockets[i].bind_started;
                let set = self.state.udp().set_shared_port(this(), enabled);
                assert_eq!(set.is_ok(), unbound, "shared port: {set:?}");
                set
            }
        };
        assert!(!is_trap(&result), "an extension call trapped: {call:?}");
    }

    fn socket(&self, index: u8) -> Option<usize> {
        let alive: Vec<usize> = (0..self.model.sockets.len())
            .filter(|&i| self.model.sockets[i].handle_alive)
            .collect();
        pick(&alive, index).map(|i| alive[i])
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Create { ipv6 } => {
                let family = if ipv6 {
                    IpAddressFamily::Ipv6
                } else {
                    IpAddressFamily::Ipv4
                };
                let result = self.state.udp().create_udp_socket(family);
                let live = self.model.live_sockets();
                match result {
                    Ok(socket) => {
                        assert!(live < MAX_SOCKETS, "a socket beyond the limit");
                        self.model.sockets.push(SocketModel {
                            rep: socket.rep(),
                            family,
                            handle_alive: true,
                            bind_started: false,
                            bound: false,
                            holders: 0,
                            latest_streams: 0,
                            generation: 0,
                        });
                    }
                    Err(error) => {
                        assert_eq!(error.code(), Some(ErrorCode::NewSocketLimit));
                        assert_eq!(live, MAX_SOCKETS, "new-socket-limit below the limit");
                    }
                }
            }
            Op::StartBind { socket, address } => {
                let Some(i) = self.socket(socket) else { return };
                let address = self.address(address);
                let rep = self.model.sockets[i].rep;
                let network = Resource::new_borrow(self.network);
                let result = poll_once(self.state.udp().start_bind(
                    Resource::new_borrow(rep),
                    network,
                    address,
                ));
                assert!(!is_trap(&result), "start-bind trapped");
                let model = &mut self.model.sockets[i];
                if result.is_ok() {
                    assert!(!model.bind_started, "bound twice");
                    model.bind_started = true;
                }
            }
            Op::FinishBind { socket } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let result = self.state.udp().finish_bind(Resource::new_borrow(rep));
                let model = &mut self.model.sockets[i];
                let expected_ok = model.bind_started && !model.bound;
                assert_eq!(result.is_ok(), expected_ok, "finish-bind: {result:?}");
                if result.is_ok() {
                    model.bound = true;
                }
            }
            Op::Stream { socket, remote } => {
                let Some(i) = self.socket(socket) else { return };
                let remote = remote.map(|a| self.address(a));
                let rep = self.model.sockets[i].rep;
                let result = poll_once(self.state.udp().stream(Resource::new_borrow(rep), remote));
                let model = &mut self.model.sockets[i];
                if !model.bound {
                    assert_eq!(code(&result), Some(ErrorCode::InvalidState), "{result:?}");
                    return;
                }
                assert_eq!(
                    is_trap(&result),
                    model.latest_streams > 0,
                    "stream with previous streams alive: {result:?}"
                );
                if let Ok((incoming, outgoing)) = result {
                    model.generation += 1;
                    model.latest_streams = 2;
                    model.holders += 2;
                    let generation = model.generation;
                    for (list, rep) in [
                        (&mut self.model.incoming, incoming.rep()),
                        (&mut self.model.outgoing, outgoing.rep()),
                    ] {
                        list.push(StreamModel {
                            rep,
                            socket: i,
                            generation,
                            permit: None,
                        });
                    }
                }
            }
            Op::LocalAddress { socket } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let result = self.state.udp().local_address(Resource::new_borrow(rep));
                let model = &self.model.sockets[i];
                assert_eq!(result.is_ok(), model.bound, "local-address: {result:?}");
                if let Ok(address) = result {
                    let family_matches = matches!(
                        (model.family, address),
                        (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(_))
                            | (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(_))
                    );
                    assert!(family_matches, "local address of the other family");
                }
            }
            Op::RemoteAddress { socket } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let result = self.state.udp().remote_address(Resource::new_borrow(rep));
                assert!(!is_trap(&result), "remote-address trapped");
            }
            Op::Extension { socket, call } => self.extension(socket, call),
            Op::HopLimit { socket, value } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let result = self
                    .state
                    .udp()
                    .set_unicast_hop_limit(Resource::new_borrow(rep), value);
                assert_eq!(result.is_err(), value == 0, "hop limit {value}: {result:?}");
            }
            Op::ReceiveBufferSize { socket, value } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let mut udp = self.state.udp();
                let result = udp.set_receive_buffer_size(Resource::new_borrow(rep), value);
                assert_eq!(
                    result.is_err(),
                    value == 0,
                    "receive buffer {value}: {result:?}"
                );
                assert!(
                    udp.receive_buffer_size(Resource::new_borrow(rep))
                        .is_ok_and(|size| size > 0)
                );
            }
            Op::SendBufferSize { socket, value } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let result = self
                    .state
                    .udp()
                    .set_send_buffer_size(Resource::new_borrow(rep), value);
                assert_eq!(
                    result.is_err(),
                    value == 0,
                    "send buffer {value}: {result:?}"
                );
            }
            Op::SubscribeSocket { socket } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                let pollable =
                    HostUdpSocket::subscribe(&mut self.state.udp(), Resource::new_borrow(rep))
                        .expect("subscribe");
                self.model.pollables.push(PollableModel {
                    rep: pollable.rep(),
                    holds: None,
                });
            }
            Op::DropSocket { socket } => {
                let Some(i) = self.socket(socket) else { return };
                let rep = self.model.sockets[i].rep;
                HostUdpSocket::drop(&mut self.state.udp(), Resource::new_own(rep))
                    .expect("drop socket");
                self.model.sockets[i].handle_alive = false;
            }
            Op::CheckSend { stream } => {
                let Some(i) = pick(&self.model.outgoing, stream) else {
                    return;
                };
                let rep = self.model.outgoing[i].rep;
                let result = self.state.udp().check_send(Resource::new_borrow(rep));
                let permit = result.expect("check-send on a live stream");
                self.model.outgoing[i].permit = Some(permit);
            }
            Op::Send { stream, datagrams } => {
                let Some(i) = pick(&self.model.outgoing, stream) else {
                    return;
                };
                let datagrams: Vec<OutgoingDatagram> = datagrams
                    .into_iter()
                    .take(80)
                    .map(|(len, to)| OutgoingDatagram {
                        // Mostly small; now and then just over the IPv4
                        // maximum.
                        data: vec![
                            0x5a;
                            if len == u16::MAX {
                                65_508
                            } else {
                                usize::from(len % 1500)
                            }
                        ],
                        remote_address: to.map(|a| self.address(a)),
                    })
                    .collect();
                let count = datagrams.len() as u64;
                let rep = self.model.outgoing[i].rep;
                let result = self.state.udp().send(Resource::new_borrow(rep), datagrams);
                let permit = self.model.outgoing[i].permit.take();
                let must_trap = permit.is_none_or(|permit| count > permit);
                assert_eq!(
                    is_trap(&result),
                    must_trap,
                    "send of {count} after permit {permit:?}: {result:?}"
                );
                if let Ok(sent) = result {
                    assert!(sent <= count, "sent {sent} of {count}");
                }
            }
            Op::Bind { socket, address } => {
                self.step(Op::StartBind { socket, address });
                self.step(Op::FinishBind { socket });
            }
            Op::CheckAndSend {
                stream,
                mut datagrams,
            } => {
                self.step(Op::CheckSend { stream });
                if let Some(i) = pick(&self.model.outgoing, stream) {
                    let permit = self.model.outgoing[i].permit.unwrap_or(0);
                    datagrams.truncate(usize::try_from(permit).unwrap_or(usize::MAX));
                }
                self.step(Op::Send { stream, datagrams });
            }
            Op::Receive { stream, max } => {
                let Some(i) = pick(&self.model.incoming, stream) else {
                    return;
                };
                let rep = self.model.incoming[i].rep;
                let result = self.state.udp().receive(Resource::new_borrow(rep), max);
                assert!(!is_trap(&result), "receive trapped: {result:?}");
                if let Ok(datagrams) = result {
                    let cap = max.min(MAX_RECEIVE_BATCH as u64);
                    assert!(datagrams.len() as u64 <= cap, "{} > {cap}", datagrams.len());
                }
            }
            Op::SubscribeIncoming { stream } => {
                let Some(i) = pick(&self.model.incoming, stream) else {
                    return;
                };
                let rep = self.model.incoming[i].rep;
                let pollable = HostIncomingDatagramStream::subscribe(
                    &mut self.state.udp(),
                    Resource::new_borrow(rep),
                )
                .expect("subscribe");
                self.hold(pollable.rep(), self.model.incoming[i].socket);
            }
            Op::SubscribeOutgoing { stream } => {
                let Some(i) = pick(&self.model.outgoing, stream) else {
                    return;
                };
                let rep = self.model.outgoing[i].rep;
                let pollable = HostOutgoingDatagramStream::subscribe(
                    &mut self.state.udp(),
                    Resource::new_borrow(rep),
                )
                .expect("subscribe");
                self.hold(pollable.rep(), self.model.outgoing[i].socket);
            }
            Op::DropIncoming { stream } => {
                let Some(i) = pick(&self.model.incoming, stream) else {
                    return;
                };
                let stream = self.model.incoming.swap_remove(i);
                HostIncomingDatagramStream::drop(
                    &mut self.state.udp(),
                    Resource::new_own(stream.rep),
                )
                .expect("drop incoming");
                self.model.release(stream.socket, stream.generation, true);
            }
            Op::DropOutgoing { stream } => {
                let Some(i) = pick(&self.model.outgoing, stream) else {
                    return;
                };
                let stream = self.model.outgoing.swap_remove(i);
                HostOutgoingDatagramStream::drop(
                    &mut self.state.udp(),
                    Resource::new_own(stream.rep),
                )
                .expect("drop outgoing");
                self.model.release(stream.socket, stream.generation, true);
            }
            Op::Poll { pollable } => {
                let Some(i) = pick(&self.model.pollables, pollable) else {
                    return;
                };
                let rep = self.model.pollables[i].rep;
                let table = &mut self.state.table;
                // `ready` polls once: it never waits.
                let ready = poll_once(table.ready(Resource::new_borrow(rep)));
                assert!(ready.is_ok(), "pollable.ready: {ready:?}");
            }
            Op::DropPollable { pollable } => {
                let Some(i) = pick(&self.model.pollables, pollable) else {
                    return;
                };
                let pollable = self.model.pollables.swap_remove(i);
                HostPollable::drop(&mut self.state.table, Resource::new_own(pollable.rep))
                    .expect("drop pollable");
                if let Some(socket) = pollable.holds {
                    self.model.release(socket, u64::MAX, false);
                }
            }
            Op::MadeUpHandle { rep, call } => {
                // Handles the model knows are real are left alone: a made-up
                // handle that happens to be live is not made up.
                if self.is_known(rep) {
                    return;
                }
                let mut udp = self.state.udp();
                let refused = match call % 5 {
                    0 => udp.local_address(Resource::new_borrow(rep)).is_err(),
                    1 => udp.check_send(Resource::new_borrow(rep)).is_err(),
                    2 => udp.receive(Resource::new_borrow(rep), 1).is_err(),
                    3 => HostUdpSocket::drop(&mut udp, Resource::new_own(rep)).is_err(),
                    _ => poll_once(udp.stream(Resource::new_borrow(rep), None)).is_err(),
                };
                assert!(refused, "a made-up handle {rep} was accepted");
            }
        }
    }

    fn hold(&mut self, rep: u32, socket: usize) {
        self.model.sockets[socket].holders += 1;
        self.model.pollables.push(PollableModel {
            rep,
            holds: Some(socket),
        });
    }

    fn is_known(&self, rep: u32) -> bool {
        rep == self.network
            || self
                .model
                .sockets
                .iter()
                .any(|s| s.handle_alive && s.rep == rep)
            || self.model.incoming.iter().any(|s| s.rep == rep)
            || self.model.outgoing.iter().any(|s| s.rep == rep)
            || self.model.pollables.iter().any(|p| p.rep == rep)
    }

    fn check_invariants(&self) {
        assert_eq!(
            self.state.udp.live_sockets(),
            self.model.live_sockets(),
            "live sockets"
        );
    }

    /// Drops everything still alive, streams first for half the sockets
    /// and sockets first for the rest.
    fn drop_everything(&mut self) {
        while let Some(pollable) = self.model.pollables.pop() {
            HostPollable::drop(&mut self.state.table, Resource::new_own(pollable.rep))
                .expect("drop pollable");
        }
        for i in 0..self.model.sockets.len() {
            if i % 2 == 0 && self.model.sockets[i].handle_alive {
                let rep = self.model.sockets[i].rep;
                HostUdpSocket::drop(&mut self.state.udp(), Resource::new_own(rep)).expect("drop");
                self.model.sockets[i].handle_alive = false;
            }
        }
        while let Some(stream) = self.model.incoming.pop() {
            HostIncomingDatagramStream::drop(&mut self.state.udp(), Resource::new_own(stream.rep))
                .expect("drop incoming");
        }
        while let Some(stream) = self.model.outgoing.pop() {
            HostOutgoingDatagramStream::drop(&mut self.state.udp(), Resource::new_own(stream.rep))
                .expect("drop outgoing");
        }
        for socket in &mut self.model.sockets {
            if socket.handle_alive {
                HostUdpSocket::drop(&mut self.state.udp(), Resource::new_own(socket.rep))
                    .expect("drop");
                socket.handle_alive = false;
            }
        }
        assert_eq!(
            self.state.udp.live_sockets(),
            0,
            "sockets left after dropping everything"
        );
    }
}

/// Polls `future` once with a no-op waker. The calls polled this way never
/// wait here: `pollable.ready` by definition, and bind and connect because
/// the run's policy answers at once.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a call that cannot wait waited"),
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Operations run.
    pub operations: usize,
    /// The store's counters at the end.
    pub stats: wasi_udp_host::UdpStatsSnapshot,
}

/// Runs the operations `data` encodes (at most [`MAX_OPERATIONS`]) against a
/// fresh store, checking the invariants listed on this crate. Panics when an
/// invariant breaks.
pub fn run(data: &[u8]) -> Report {
    RUNTIME.with(|runtime| {
        let _entered = runtime.enter();
        let mut input = Unstructured::new(data);
        let mut runner = Runner::new();
        let mut operations = 0;
        while operations < MAX_OPERATIONS {
            let Ok(op) = Op::next(&mut input) else {
                break;
            };
            runner.step(op);
            runner.check_invariants();
            operations += 1;
            if input.is_empty() {
                break;
            }
        }
        runner.drop_everything();
        let report = Report {
            operations,
            stats: runner.state.udp.stats(),
        };
        drop(runner);
        // Give the runtime the turn an embedding's would get, in which tokio
        // frees the registrations of sockets whose pollables waited.
        drop(_entered);
        runtime.block_on(tokio::task::yield_now());
        report
    })
}
