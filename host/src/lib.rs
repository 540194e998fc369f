//! `wasi:sockets/udp@0.2.1` for wasmtime components, over tokio UDP sockets.
//!
//! This crate implements the `udp` and `udp-create-socket` interfaces of
//! WASI 0.2 exactly as their WIT documents them, and shares every other type
//! (pollables, the `network` handle, the resource table) with
//! [`wasmtime_wasi`], so a component gets wasmtime-wasi's clocks, stdio and
//! `wasi:io/poll` together with this crate's UDP.
//!
//! # Embedding
//!
//! ```no_run
//! use wasmtime::component::{Component, Linker, ResourceTable};
//! use wasmtime::{Config, Engine, Store};
//! use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
//! use wasmtime_wasi::p2::bindings::Command;
//! use wasi_udp_host::{UdpCtx, UdpCtxView, UdpView};
//!
//! struct Host { wasi: WasiCtx, udp: UdpCtx, table: ResourceTable }
//!
//! impl WasiView for Host {
//!     fn ctx(&mut self) -> WasiCtxView<'_> {
//!         WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
//!     }
//! }
//! impl UdpView for Host {
//!     fn udp(&mut self) -> UdpCtxView<'_> {
//!         UdpCtxView { ctx: &mut self.udp, table: &mut self.table }
//!     }
//! }
//!
//! # async fn run() -> wasmtime::Result<()> {
//! let engine = Engine::new(&Config::new())?;
//! let mut linker = Linker::<Host>::new(&engine);
//! // wasmtime-wasi's interfaces without its UDP, then ours.
//! wasi_udp_host::add_command_to_linker_async(&mut linker)?;
//!
//! let host = Host {
//!     wasi: WasiCtx::builder().inherit_stdio().build(),
//!     udp: UdpCtx::builder().allow_loopback().build(),
//!     table: ResourceTable::new(),
//! };
//! // No call may make the host copy more than the largest legal send.
//! let fuel = host.udp.limits().hostcall_fuel();
//! let mut store = Store::new(&engine, host);
//! store.set_hostcall_fuel(fuel);
//! let component = Component::from_file(&engine, "guest.wasm")?;
//! let command = Command::instantiate_async(&mut store, &component, &linker).await?;
//! let _ = command.wasi_cli_run().call_run(&mut store).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Linking
//!
//! wasmtime resolves an import to the exact version registered, or else to
//! the newest registered version of the same `0.2` track. If wasmtime-wasi's
//! own UDP is in the linker too, a guest importing any version but exactly
//! `0.2.1` lands on wasmtime-wasi's. So either use
//! [`add_command_to_linker_async`], which leaves wasmtime-wasi's UDP out, or
//! add wasmtime-wasi's interfaces yourself without its `udp` and
//! `udp-create-socket` and then call [`add_to_linker_async`].
//!
//! # Policy
//!
//! A [`UdpCtx`] grants nothing until told. [`RuleSet`] is the declarative
//! policy: allow and deny [`Rule`]s by use (bind, connect, send, receive),
//! network and ports, where a matching deny always wins. The rules mean
//! what a stateful firewall's mean:
//! - every datagram that leaves is covered by a `send` rule, connected or
//!   not: connecting needs `connect` and `send` for the peer;
//! - what a socket was allowed to send to, it may hear back from (its
//!   connected peer, and up to [`Limits::max_reply_peers`] destinations it
//!   sent to), without a `receive` rule;
//! - `receive` rules admit unsolicited datagrams (servers);
//! - deny rules refuse whatever allows them, replies included, and IPv4
//!   deny rules also catch IPv4 addresses carried in IPv6 ones (NAT64,
//!   6to4, ...).
//!
//! Every bind, connect and send is checked before the syscall, and so is
//! the source of every received datagram (refused ones are dropped and
//! counted by cause in [`UdpCtx::stats`]). Refusals are `access-denied` for
//! the guest; for the host, a warning (target `wasi_udp_host::policy`)
//! naming what was refused, why, and what would grant it, once per cause and
//! peer and then as counts. An embedder's own [`UdpPolicy`] may wait before
//! deciding a bind or connect ([`UdpPolicy::check_async`]).
//!
//! # Multicast, broadcast and shared ports
//!
//! WASI 0.2 has none of them; [`add_extensions_to_linker`] adds this
//! crate's own WIT package, `wasi-udp:extensions@0.1.0` (in `wit/deps/
//! extensions`), whose functions take the 0.2.1 `udp-socket`: join and
//! leave groups (any-source or source-specific, on an interface),
//! multicast hop limit, loopback and interface, broadcast, and shared
//! ports. It is off unless called. The policy covers it with three uses
//! that only rules naming them grant ([`SocketUse::Join`],
//! [`SocketUse::Broadcast`], [`SocketUse::Share`]): joining needs `join`
//! for the group, a send to a group needs `join` and `send`, a send to a
//! broadcast address needs `broadcast` and `send`, a bind with the port
//! shared needs `share` and `bind`. Both networks implement it.
//! [`explain_missing_extensions`] says in words why a host without it
//! cannot instantiate a component that imports it.
//!
//! # Limits
//!
//! Sockets, batch sizes, datagram size, socket buffer space, send rate and
//! remembered reply peers are limited per store; [`Limits`] lists each with
//! its default and what the guest sees when it is reached. Reaching one is
//! a warning (target `wasi_udp_host::limits`) that names the limit and how
//! to raise it.
//!
//! # Performance
//!
//! Host calls do only what the kernel can do at once, with no task spawned
//! and no per-datagram buffer: a `send` of N datagrams is one `sendmmsg`, or
//! one segmented send (UDP GSO) for a run of equal-sized datagrams to one
//! destination; a `receive` takes up to 32 datagrams per `recvmmsg` into
//! per-store buffers and copies each once, at its exact size. `check-send`
//! asks the kernel nothing until a send finds the buffer full, and a
//! pollable whose data is already queued is ready without a trip through
//! the reactor. The README has the benchmark against wasmtime-wasi and
//! native code.
//!
//! # Networks
//!
//! The state machine speaks to a [`Network`] of [`DatagramSocket`]s
//! through a small seam: readiness, non-blocking batches, options. Below
//! it are the operating system's network ([`OsNetwork`], the default), a
//! simulated one ([`SimNetwork`], with seeded [`Faults`] and virtual time on
//! a paused tokio runtime), and [`Capture`], a pcap layer over either.
//!
//! ```text
//!  guest ──wit──> host/ (glue) ──> socket.rs, streams.rs ──> policy, limits
//!                                        │
//!                                        └──> dyn Network ──> dyn DatagramSocket
//!                                               ├─ OsNetwork (the kernel: sendmmsg, GSO, recvmmsg)
//!                                               ├─ SimNode   (memory: faults, virtual time)
//!                                               └─ Capture   (pcap, over either)
//! ```
//!
//! # Where this differs from wasmtime-wasi 48
//!
//! - `stream()` right after dropping streams never traps: pollables don't
//!   keep streams alive and no background task holds the socket.
//! - A datagram queued when streams are dropped and recreated is still
//!   delivered, and `receive` returns what the kernel already holds even
//!   before the guest polled.
//! - A kernel-chosen port survives `stream(some)` then `stream(none)`.
//! - An error met by `receive` after it collected datagrams, and an ICMP
//!   report met by `send` after it sent some, are returned by the next call.
//! - `send([])` needs a `check-send` like any other `send`.
//! - Nothing runs after a host call returns: a `send` that returned is done.
//!
//! `docs/conformance.md` lists each difference with the WIT sentence behind
//! it and the guest that pins it.

#![warn(unreachable_pub, missing_debug_implementations)]

mod backend;
/// The bindgen output: the `Host*` traits this crate implements on
/// [`UdpCtxView`], for callers that drive the provider without a guest
/// (the operation fuzzer does).
#[expect(missing_docs, reason = "bindgen output; the WIT text documents it")]
pub mod bindings;
mod ctx;
mod descriptors;
mod error;
mod host;
mod limits;
mod lookup;
mod peers;
mod policy;
mod report;
mod socket;
mod stats;
mod streams;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;

pub use crate::backend::capture::Capture;
pub use crate::backend::sim::{Faults, Partition, SimNetwork, SimNode, SimStats};
pub use crate::backend::tokio::OsNetwork;
pub use crate::backend::{
    DatagramSocket, Family, Network, Ready, ReceiveSlots, Received, SendOutcome, Transmit,
};
pub use crate::ctx::{UdpCtx, UdpCtxBuilder, UdpCtxView, UdpStatsSnapshot, UdpView, WasiUdpState};
pub use crate::descriptors::{DEFAULT_SOCKETS_PER_STORE, DescriptorBudget};
pub use crate::error::{SocketError, SocketResult};
pub use crate::limits::{
    DEFAULT_MAX_RECEIVE_BATCH, DEFAULT_MAX_REPLY_PEERS, DEFAULT_MAX_SEND_BATCH,
    DEFAULT_MAX_SOCKET_BUFFER, DEFAULT_MAX_SOCKETS, DEFAULT_MAX_STORE_BUFFERS, Limits,
    MAX_DATAGRAM_SIZE, SendRate,
};
pub use crate::lookup::{DEFAULT_HOSTS_FILE, NameLookup, ResolveAddressStream};
pub use crate::policy::{
    AllowAll, Decision, Denial, DenyAll, IpNet, ParseRuleError, Rule, RuleSet, SocketUse, UdpPolicy,
};
pub use crate::report::Hints;
pub use crate::socket::UdpSocket;
pub use crate::stats::{RETIRED_SOCKETS, SocketStatsSnapshot};
pub use crate::streams::{IncomingDatagramStream, OutgoingDatagramStream};

/// The `wasi:sockets` version this crate implements.
pub const WASI_SOCKETS_VERSION: &str = "0.2.1";

#[derive(Debug)]
struct UdpProvider;

impl HasData for UdpProvider {
    type Data<'a> = UdpCtxView<'a>;
}

/// Adds `wasi:sockets/ip-name-lookup@0.2.1` to `linker`: the names a
/// store's [`NameLookup`] allows, in place of wasmtime-wasi's lookup (whose
/// `WasiCtxBuilder::allow_ip_name_lookup` then does not apply).
///
/// # Errors
/// If the linker already defines the interface and does not allow
/// shadowing.
pub fn add_name_lookup_to_linker<T: UdpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::wasi::sockets::ip_name_lookup::add_to_linker::<T, UdpProvider>(linker, T::udp)
}

/// Adds `wasi:sockets/udp@0.2.1` and `wasi:sockets/udp-create-socket@0.2.1`
/// to `linker`, and nothing else.
///
/// The guest also needs `wasi:io/poll` and `wasi:sockets/network` (and
/// usually `instance-network`) from wasmtime-wasi; see the crate docs for why
/// wasmtime-wasi's own UDP must not be in the same linker.
///
/// # Errors
/// If the linker already defines these interfaces and does not allow
/// shadowing.
pub fn add_to_linker_async<T: UdpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::wasi::sockets::udp::add_to_linker::<T, UdpProvider>(linker, T::udp)?;
    bindings::wasi::sockets::udp_create_socket::add_to_linker::<T, UdpProvider>(linker, T::udp)?;
    Ok(())
}

/// Adds `wasi-udp:extensions/udp-extensions@0.1.0` to `linker`: multicast
/// groups, broadcast and shared ports for the sockets of
/// [`add_to_linker_async`], each under the store's policy (the uses
/// [`SocketUse::Join`], [`SocketUse::Broadcast`] and [`SocketUse::Share`],
/// which no base rule set grants).
///
/// Off unless called: a component that imports the interface then fails
/// to instantiate, and one that does not sees no difference either way.
///
/// # Errors
/// If the linker already defines the interface and does not allow
/// shadowing.
pub fn add_extensions_to_linker<T: UdpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::wasi_udp::extensions::udp_extensions::add_to_linker::<T, UdpProvider>(linker, T::udp)
}

/// The name a component imports the extensions under.
pub const EXTENSIONS_INTERFACE: &str = "wasi-udp:extensions/udp-extensions@0.1.0";

/// Says in plain words why a component could not be instantiated, when the
/// cause is that it imports [`EXTENSIONS_INTERFACE`] and the linker does
/// not define it (wasmtime-wasi's own UDP, other WASI hosts, or a linker
/// without [`add_extensions_to_linker`]); `None` for any other error.
pub fn explain_missing_extensions(error: &wasmtime::Error) -> Option<String> {
    let text = format!("{error:#}");
    text.contains("wasi-udp:extensions/").then(|| {
        format!(
            "the component imports {EXTENSIONS_INTERFACE} (multicast groups, broadcast and \
             shared ports), which this host does not provide. Only wasi-udp-host has it (an \
             embedder adds it with `wasi_udp_host::add_extensions_to_linker`); wasmtime-wasi's \
             own UDP and other WASI hosts do not."
        )
    })
}

/// Adds every interface a `wasi:cli/command` component can import: all of
/// wasmtime-wasi's WASI 0.2 interfaces except its `udp`,
/// `udp-create-socket` and `ip-name-lookup`, then this crate's.
///
/// # Errors
/// If the linker already defines any of these interfaces and does not allow
/// shadowing.
pub fn add_command_to_linker_async<T: WasiView + UdpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
    use wasmtime_wasi_io::bindings::wasi::io;

    struct Io;
    impl HasData for Io {
        type Data<'a> = &'a mut ResourceTable;
    }
    fn table<T: WasiView>(t: &mut T) -> &mut ResourceTable {
        t.ctx().table
    }

    let l = linker;
    io::error::add_to_linker::<T, Io>(l, table)?;
    io::poll::add_to_linker::<T, Io>(l, table)?;
    io::streams::add_to_linker::<T, Io>(l, table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, &Default::default(), T::sockets)?;
    add_name_lookup_to_linker(l)?;
    add_to_linker_async(l)
}
