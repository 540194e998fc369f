//! A small library with the kind of UDP tests any crate has, written for
//! no runtime in particular. `cargo test --target wasm32-wasip2` runs them
//! with `CARGO_TARGET_WASM32_WASIP2_RUNNER=wasi-udp`.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Answers one datagram on `socket` by sending it back.
///
/// # Errors
/// Whatever the socket reports.
pub fn echo_once(socket: &UdpSocket) -> io::Result<SocketAddr> {
    let mut buffer = [0; 1500];
    let (len, from) = socket.recv_from(&mut buffer)?;
    socket.send_to(&buffer[..len], from)?;
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_and_learns_the_port() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert_ne!(socket.local_addr().expect("address").port(), 0);
    }

    #[test]
    fn asks_an_echo_server_by_name() {
        let server = UdpSocket::bind("localhost:0").expect("bind");
        let address = server.local_addr().expect("address");
        // No threads on wasm32-wasip2: the request is queued before the
        // server answers it.
        let client = UdpSocket::bind("localhost:0").expect("bind");
        client.connect(address).expect("connect");
        client.send(b"ping").expect("send");
        let from = echo_once(&server).expect("echo");
        assert_eq!(from, client.local_addr().expect("address"));
        let mut buffer = [0; 16];
        let len = client.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..len], b"ping");
    }

    #[test]
    fn ipv6_loopback_works_too() {
        let a = UdpSocket::bind("[::1]:0").expect("bind");
        let b = UdpSocket::bind("[::1]:0").expect("bind");
        a.send_to(b"v6", b.local_addr().expect("address"))
            .expect("send");
        let mut buffer = [0; 16];
        let (len, from) = b.recv_from(&mut buffer).expect("receive");
        assert_eq!(&buffer[..len], b"v6");
        assert_eq!(from, a.local_addr().expect("address"));
    }

    #[test]
    fn a_closed_port_is_refused_on_a_connected_socket() {
        let gone = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = gone.local_addr().expect("address");
        drop(gone);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.connect(address).expect("connect");
        socket.send(b"anyone?").expect("send");
        let mut buffer = [0; 16];
        let error = socket.recv(&mut buffer).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }
}
