//! Helpers shared by the conformance guests: bindings for `../wit`'s `guest`
//! world, address constructors, and blocking waits that always give up after
//! [`TIMEOUT_NANOS`].
//!
//! A guest passes by returning from `main`; every failed expectation panics
//! with a message, which the host prints.

wit_bindgen::generate!({
    path: "../wit",
    world: "wasi-udp:provider/guest",
    generate_all,
});

pub use wasi::clocks::monotonic_clock;
pub use wasi::io::poll::{Pollable, poll};
pub use wasi::sockets::instance_network::instance_network;
pub use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};
pub use wasi::sockets::udp::{
    IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
pub use wasi::sockets::udp_create_socket::create_udp_socket;

/// How long any wait may take before the guest gives up and fails.
pub const TIMEOUT_NANOS: u64 = 5_000_000_000;

/// `127.0.0.1:port` or `[::1]:port`.
pub fn loopback(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (127, 0, 0, 1),
        }),
        IpAddressFamily::Ipv6 => IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port,
            flow_info: 0,
            address: (0, 0, 0, 0, 0, 0, 0, 1),
            scope_id: 0,
        }),
    }
}

/// `0.0.0.0:port` or `[::]:port`.
pub fn unspecified(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (0, 0, 0, 0),
        }),
        IpAddressFamily::Ipv6 => IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port,
            flow_info: 0,
            address: (0, 0, 0, 0, 0, 0, 0, 0),
            scope_id: 0,
        }),
    }
}

/// `[::ffff:127.0.0.1]:port`: IPv4 reached through an IPv6 address.
pub fn ipv4_mapped_loopback(port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port,
        flow_info: 0,
        address: (0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001),
        scope_id: 0,
    })
}

/// Both families, for guests that check each.
pub const FAMILIES: [IpAddressFamily; 2] = [IpAddressFamily::Ipv4, IpAddressFamily::Ipv6];

/// The port of an address.
pub fn port(addr: &IpSocketAddress) -> u16 {
    match addr {
        IpSocketAddress::Ipv4(a) => a.port,
        IpSocketAddress::Ipv6(a) => a.port,
    }
}

/// The same address with another port.
pub fn with_port(addr: IpSocketAddress, port: u16) -> IpSocketAddress {
    match addr {
        IpSocketAddress::Ipv4(a) => IpSocketAddress::Ipv4(Ipv4SocketAddress { port, ..a }),
        IpSocketAddress::Ipv6(a) => IpSocketAddress::Ipv6(Ipv6SocketAddress { port, ..a }),
    }
}

/// Two addresses are the same socket address (WIT records have no `Eq`).
pub fn same(a: &IpSocketAddress, b: &IpSocketAddress) -> bool {
    match (a, b) {
        (IpSocketAddress::Ipv4(a), IpSocketAddress::Ipv4(b)) => {
            a.port == b.port && a.address == b.address
        }
        (IpSocketAddress::Ipv6(a), IpSocketAddress::Ipv6(b)) => {
            a.port == b.port && a.address == b.address && a.scope_id == b.scope_id
        }
        _ => false,
    }
}

/// Panics unless `result` is `Err(expected)`.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, ErrorCode>, expected: ErrorCode) {
    match result {
        Err(code) if code == expected => {}
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

/// The instance network handle.
pub fn network() -> Network {
    instance_network()
}

/// A socket of `family`, not yet bound.
pub fn socket(family: IpAddressFamily) -> UdpSocket {
    create_udp_socket(family).expect("create-udp-socket")
}

/// Binds `socket` to `addr` through start-bind and finish-bind.
pub fn bind(socket: &UdpSocket, addr: IpSocketAddress) -> Result<(), ErrorCode> {
    socket.start_bind(&network(), addr)?;
    wait(&socket.subscribe());
    socket.finish_bind()
}

/// A socket of `family` bound to loopback on a port the system chooses.
pub fn bound_socket(family: IpAddressFamily) -> (UdpSocket, IpSocketAddress) {
    let socket = socket(family);
    bind(&socket, loopback(family, 0)).expect("bind to loopback");
    let addr = socket.local_address().expect("local-address after bind");
    assert_ne!(port(&addr), 0, "bound to port 0");
    (socket, addr)
}

/// Blocks until `pollable` is ready; panics after [`TIMEOUT_NANOS`].
#[track_caller]
pub fn wait(pollable: &Pollable) {
    assert!(
        wait_at_most(pollable, TIMEOUT_NANOS),
        "timed out waiting for a pollable"
    );
}

/// Blocks until `pollable` is ready or `nanos` pass; true if it became ready.
pub fn wait_at_most(pollable: &Pollable, nanos: u64) -> bool {
    let timeout = monotonic_clock::subscribe_duration(nanos);
    let ready = poll(&[pollable, &timeout]);
    ready.contains(&0)
}

/// Sends every datagram, waiting on `check-send` when it permits none.
#[track_caller]
pub fn send_all(stream: &OutgoingDatagramStream, datagrams: &[OutgoingDatagram]) {
    let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
    let mut rest = datagrams;
    let pollable = stream.subscribe();
    while !rest.is_empty() {
        assert!(monotonic_clock::now() < deadline, "timed out sending");
        let permitted = stream.check_send().expect("check-send");
        if permitted == 0 {
            wait(&pollable);
            continue;
        }
        let take = rest
            .len()
            .min(usize::try_from(permitted).unwrap_or(usize::MAX));
        let sent = stream.send(&rest[..take]).expect("send");
        rest = &rest[usize::try_from(sent).expect("count")..];
    }
}

/// Sends one datagram with `data` to `to` (or to the connected peer).
#[track_caller]
pub fn send_one(stream: &OutgoingDatagramStream, data: &[u8], to: Option<IpSocketAddress>) {
    send_all(
        stream,
        &[OutgoingDatagram {
            data: data.to_vec(),
            remote_address: to,
        }],
    );
}

/// Receives exactly `count` datagrams, waiting as needed; panics on error
/// or after [`TIMEOUT_NANOS`].
#[track_caller]
pub fn receive_exactly(stream: &IncomingDatagramStream, count: usize) -> Vec<IncomingDatagram> {
    let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
    let pollable = stream.subscribe();
    let mut received = Vec::new();
    while received.len() < count {
        assert!(
            monotonic_clock::now() < deadline,
            "timed out: received {} of {count} datagrams",
            received.len()
        );
        let batch = stream
            .receive((count - received.len()) as u64)
            .expect("receive");
        if batch.is_empty() {
            wait(&pollable);
        }
        received.extend(batch);
    }
    received
}

/// Receives until `pollable`-driven waiting yields a result that is an error
/// or a non-empty batch; panics after [`TIMEOUT_NANOS`].
pub fn receive_next(
    stream: &IncomingDatagramStream,
    max: u64,
) -> Result<Vec<IncomingDatagram>, ErrorCode> {
    let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
    let pollable = stream.subscribe();
    loop {
        assert!(monotonic_clock::now() < deadline, "timed out receiving");
        match stream.receive(max) {
            Ok(batch) if batch.is_empty() => wait(&pollable),
            other => return other,
        }
    }
}
