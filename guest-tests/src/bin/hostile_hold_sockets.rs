//! Takes sockets until the host refuses one (or MAX), each bound to
//! loopback and never read, and holds them: a guest at its socket limit
//! that also lets every receive queue fill. Arguments: MAX SECONDS REPORT.
//! Once it holds them it sends `holding N control C ports P1 P2 ...` to
//! REPORT (an address), then waits up to SECONDS for any datagram on its
//! control socket (port C) and exits.
use std::net::SocketAddr;

use guest_tests::*;

fn to_wit(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(_) => panic!("an IPv4 report address"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [max, seconds, report] = &args[..] else {
        panic!("usage: hostile_hold_sockets MAX SECONDS REPORT");
    };
    let max: usize = max.parse().expect("MAX");
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let report: SocketAddr = report.parse().expect("REPORT");

    let (control, control_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (control_in, control_out) = control.stream(None).expect("control streams");

    let mut held = Vec::new();
    let mut ports = Vec::new();
    while held.len() < max {
        let socket = match create_udp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => socket,
            Err(ErrorCode::NewSocketLimit) => break,
            Err(other) => panic!("create-udp-socket: {other:?}"),
        };
        match bind(&socket, loopback(IpAddressFamily::Ipv4, 0)) {
            Ok(()) => {}
            Err(ErrorCode::NewSocketLimit) => break,
            Err(other) => panic!("bind: {other:?}"),
        }
        ports.push(port(&socket.local_address().expect("local address")));
        let streams = socket.stream(None).expect("streams");
        held.push((socket, streams));
    }
    let mut message = format!(
        "holding {} control {} ports",
        held.len(),
        port(&control_addr)
    );
    for port in &ports {
        message.push_str(&format!(" {port}"));
    }
    println!("holding {} sockets", held.len());
    send_one(&control_out, message.as_bytes(), Some(to_wit(report)));
    let stopped = wait_at_most(&control_in.subscribe(), seconds * 1_000_000_000);
    println!("{}", if stopped { "told to stop" } else { "timed out" });
}
