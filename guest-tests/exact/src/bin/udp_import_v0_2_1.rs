//! Imports exactly wasi:sockets/udp@0.2.1 (the `wasi` crate 0.13.2) and must
//! reach the provider: the host test checks the import list and that the
//! provider counted this guest's socket and datagram.
#![no_main]

use wasi_0_2_1::io::poll::poll;
use wasi_0_2_1::sockets::instance_network::instance_network;
use wasi_0_2_1::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi_0_2_1::sockets::udp::OutgoingDatagram;
use wasi_0_2_1::sockets::udp_create_socket::create_udp_socket;

struct Guest;

impl wasi_0_2_1::exports::cli::run::Guest for Guest {
    fn run() -> Result<(), ()> {
        exchange_with_itself().then_some(()).ok_or(())
    }
}

wasi_0_2_1::cli::command::export!(Guest with_types_in wasi_0_2_1);

fn exchange_with_itself() -> bool {
    let Ok(socket) = create_udp_socket(IpAddressFamily::Ipv4) else {
        return false;
    };
    let loopback = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (127, 0, 0, 1),
    });
    if socket.start_bind(&instance_network(), loopback).is_err() || socket.finish_bind().is_err() {
        return false;
    }
    let Ok(addr) = socket.local_address() else {
        return false;
    };
    let Ok((incoming, outgoing)) = socket.stream(None) else {
        return false;
    };
    if !matches!(outgoing.check_send(), Ok(n) if n >= 1) {
        return false;
    }
    let datagram = OutgoingDatagram {
        data: b"0.2.1".to_vec(),
        remote_address: Some(addr),
    };
    if outgoing.send(&[datagram]) != Ok(1) {
        return false;
    }
    let pollable = incoming.subscribe();
    let timeout = wasi_0_2_1::clocks::monotonic_clock::subscribe_duration(5_000_000_000);
    for _ in 0..100 {
        match incoming.receive(1) {
            Ok(got) if got.is_empty() => {}
            Ok(got) => return got[0].data == b"0.2.1",
            Err(_) => return false,
        }
        if !poll(&[&pollable, &timeout]).contains(&0) {
            return false;
        }
    }
    false
}
