//! The one `bindgen!` call, for the 0.2.1 interfaces and
//! `wasi-udp:extensions` together, so that both name one `udp-socket`.
//!
//! `wasi:io` and the `network` resource are mapped to wasmtime-wasi's types,
//! so pollables and network handles created by wasmtime-wasi and by this crate
//! live side by side in one `ResourceTable` and are interchangeable.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasi-udp:provider/host-with-extensions",
    // Bind and connect may wait for the policy (an embedder's may consult a
    // service); every other call does only what the kernel can do at once.
    imports: {
        "wasi:sockets/udp.[method]udp-socket.start-bind": async | trappable,
        "wasi:sockets/udp.[method]udp-socket.stream": async | trappable,
        "wasi-udp:extensions/udp-extensions.join-multicast-group": async | trappable,
        "wasi-udp:extensions/udp-extensions.join-source-specific-group": async | trappable,
        default: trappable,
    },
    require_store_data_send: true,
    trappable_error_type: {
        "wasi:sockets/network.error-code" => crate::error::SocketError,
    },
    with: {
        "wasi:io": wasmtime_wasi_io::bindings::wasi::io,
        "wasi:sockets/network.network": wasmtime_wasi::p2::Network,
        "wasi:sockets/udp.udp-socket": crate::socket::UdpSocket,
        "wasi:sockets/udp.incoming-datagram-stream": crate::streams::IncomingDatagramStream,
        "wasi:sockets/udp.outgoing-datagram-stream": crate::streams::OutgoingDatagramStream,
        "wasi:sockets/ip-name-lookup.resolve-address-stream": crate::lookup::ResolveAddressStream,
    },
});

pub use wasi::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
