//! `wasi-udp:extensions`: three sockets share one port, and a broadcast to
//! that port reaches each of them; the port cannot be shared once bound, a
//! socket that does not share it cannot bind it, and a socket that did not
//! enable broadcast cannot broadcast.
//!
//! Args: `[BROADCAST-ADDRESS [PORT]]`, by default `255.255.255.255 47000`.
//! The host must grant `share,bind` on `0.0.0.0:PORT`, `broadcast,send` to
//! the broadcast address and port, and `receive` from the sender's address.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use wasi_udp_ext::Datagrams;
use wasi_udp_ext::wasi::sockets::network::{ErrorCode, IpAddressFamily};
use wasi_udp_ext::wasi::sockets::udp_create_socket::create_udp_socket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let broadcast: Ipv4Addr = args.first().map_or(Ipv4Addr::BROADCAST, |a| {
        a.parse().expect("a broadcast address")
    });
    let port: u16 = args.get(1).map_or(47_000, |p| p.parse().expect("a port"));
    let shared_at = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));

    let listeners: Vec<Datagrams> = (0..3)
        .map(|i| {
            let socket = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
            assert_eq!(wasi_udp_ext::raw::shared_port(&socket), Ok(false));
            wasi_udp_ext::set_shared_port(&socket, true).expect("share the port");
            assert_eq!(wasi_udp_ext::raw::shared_port(&socket), Ok(true));
            Datagrams::bind(socket, shared_at).unwrap_or_else(|e| panic!("listener {i}: bind: {e}"))
        })
        .collect();
    assert_eq!(
        wasi_udp_ext::set_shared_port(&listeners[0].socket, false),
        Err(ErrorCode::InvalidState),
        "the port cannot stop being shared once bound"
    );
    let loner = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
    assert!(
        Datagrams::bind(loner, shared_at).is_err(),
        "a socket that does not share the port cannot bind it"
    );

    let sender = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
    let sender =
        Datagrams::bind(sender, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).expect("bind");
    let to = SocketAddr::from((broadcast, port));
    assert_eq!(wasi_udp_ext::raw::broadcast(&sender.socket), Ok(false));
    assert_eq!(
        sender.send_to(b"not yet", to),
        Err(ErrorCode::AccessDenied),
        "broadcast is off until enabled"
    );
    wasi_udp_ext::set_broadcast(&sender.socket, true).expect("enable broadcast");
    assert_eq!(wasi_udp_ext::raw::broadcast(&sender.socket), Ok(true));
    sender.send_to(b"hello, everyone", to).expect("broadcast");

    for (i, listener) in listeners.iter().enumerate() {
        let (payload, from) = listener
            .receive(Duration::from_secs(5))
            .expect("receive")
            .unwrap_or_else(|| panic!("listener {i} did not hear the broadcast within 5 s"));
        assert_eq!(payload, b"hello, everyone", "listener {i}");
        assert_eq!(from.port(), sender.local_address().expect("address").port());
    }
    println!("3 listeners on port {port} heard the broadcast to {to}");
}
