//! Rust std: UdpSocket::bind, send_to and a blocking recv_from, IPv4.
use std::net::UdpSocket;

fn main() {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    let a_addr = a.local_addr().expect("local_addr");
    assert_eq!(
        a.send_to(b"hello", b.local_addr().expect("addr"))
            .expect("send_to"),
        5
    );
    let mut buf = [0; 64];
    let (len, from) = b.recv_from(&mut buf).expect("recv_from");
    assert_eq!(&buf[..len], b"hello");
    assert_eq!(from, a_addr);
}
