//! The UDP patterns programs use, one per run, each printing what happened:
//!
//! - `port0`: bind port 0 and read the port the system chose;
//! - `send-recv`: send to an address and receive with the source address;
//! - `reuse PORT`: bind a fixed port, close the socket, bind it again;
//! - `refused`: a connected socket whose peer is gone hears of it (the ICMP
//!   port-unreachable) on its next receive;
//! - `many N`: hold N sockets at once;
//! - `backpressure COUNT`: an event-driven sender on raw `wasi:sockets`: it
//!   sends COUNT datagrams, and when `check-send` permits none it waits on
//!   the stream's pollable (nothing is queued on the host meanwhile).
use std::net::UdpSocket;

use wasip2::io::poll::poll;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::udp::OutgoingDatagram;
use wasip2::sockets::udp_create_socket::create_udp_socket;

fn backpressure(count: u64) {
    let loopback = |port| {
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (127, 0, 0, 1),
        })
    };
    let bind = |socket: &wasip2::sockets::udp::UdpSocket| {
        socket
            .start_bind(&instance_network(), loopback(0))
            .expect("start-bind");
        socket.subscribe().block();
        socket.finish_bind().expect("finish-bind");
    };
    let receiver = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
    bind(&receiver);
    let (incoming, _) = receiver.stream(None).expect("stream");
    let sender = create_udp_socket(IpAddressFamily::Ipv4).expect("socket");
    bind(&sender);
    let (_, outgoing) = sender
        .stream(Some(receiver.local_address().expect("address")))
        .expect("connect");
    let can_send = outgoing.subscribe();
    let can_receive = incoming.subscribe();
    let (mut sent, mut received, mut zero_permits, mut waits) = (0u64, 0u64, 0u64, 0u64);
    while received < count {
        let permitted = if sent < count {
            outgoing.check_send().expect("check-send")
        } else {
            0
        };
        if sent < count && permitted == 0 {
            zero_permits += 1;
        }
        if permitted > 0 {
            let batch: Vec<OutgoingDatagram> = (0..permitted.min(count - sent))
                .map(|_| OutgoingDatagram {
                    data: vec![7; 256],
                    remote_address: None,
                })
                .collect();
            sent += outgoing.send(&batch).expect("send");
        }
        received += incoming.receive(64).expect("receive").len() as u64;
        if permitted == 0 && received < count {
            // Nothing to do but wait for either side.
            waits += 1;
            let ready = if sent < count {
                poll(&[&can_send, &can_receive])
            } else {
                poll(&[&can_receive])
            };
            assert!(!ready.is_empty());
        }
    }
    println!(
        "sent {sent}, received {received}, check-send said 0 {zero_permits} times, waited {waits} times"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["port0"] => {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
            println!("bound to {}", socket.local_addr().expect("address"));
        }
        ["send-recv"] => {
            let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
            a.send_to(b"hello", b.local_addr().expect("address"))
                .expect("send_to");
            let mut buffer = [0; 64];
            let (len, from) = b.recv_from(&mut buffer).expect("recv_from");
            println!(
                "received {:?} from {from} (the sender is {})",
                String::from_utf8_lossy(&buffer[..len]),
                a.local_addr().expect("address")
            );
        }
        ["reuse", port] => {
            let addr = format!("127.0.0.1:{port}");
            let first = UdpSocket::bind(&addr).expect("bind");
            drop(first);
            let again = UdpSocket::bind(&addr).expect("bind the same port again");
            println!("rebound {}", again.local_addr().expect("address"));
        }
        ["refused"] => {
            let gone = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let peer = gone.local_addr().expect("address");
            drop(gone);
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
            socket.connect(peer).expect("connect");
            socket.send(b"anyone?").expect("send");
            let mut buffer = [0; 64];
            match socket.recv(&mut buffer) {
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                    println!("{peer}: connection refused, reported on the next receive");
                }
                other => panic!("expected connection refused, got {other:?}"),
            }
        }
        ["many", count] => {
            let count: usize = count.parse().expect("N");
            let sockets: Vec<UdpSocket> = (0..count)
                .map(|i| {
                    UdpSocket::bind("127.0.0.1:0")
                        .unwrap_or_else(|e| panic!("socket {}: {e}", i + 1))
                })
                .collect();
            println!("holding {} sockets", sockets.len());
        }
        ["backpressure", count] => backpressure(count.parse().expect("COUNT")),
        _ => panic!("usage: patterns port0|send-recv|reuse PORT|refused|many N|backpressure COUNT"),
    }
}
