//! `echo_server ADDR [COUNT]`: binds ADDR with `std::net::UdpSocket` and
//! sends every datagram back to where it came from, COUNT times (default:
//! until stopped), printing each exchange:
//!
//! ```text
//! listening on 0.0.0.0:5300
//! echoed 5 bytes to 10.53.0.2:40000
//! ```
use std::net::UdpSocket;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5300".into());
    let count: Option<u64> = args.next().map(|n| n.parse().expect("a count"));
    let socket = UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    println!(
        "listening on {}",
        socket.local_addr().expect("local address")
    );
    let mut buffer = vec![0u8; 65_536];
    let mut echoed = 0;
    while count.is_none_or(|count| echoed < count) {
        let (len, from) = socket.recv_from(&mut buffer).expect("receive");
        socket.send_to(&buffer[..len], from).expect("send back");
        println!("echoed {len} bytes to {from}");
        echoed += 1;
    }
}
