//! Rust std over IPv6 loopback: bind, send_to, recv_from, connect.
use std::net::UdpSocket;

fn main() {
    let a = UdpSocket::bind("[::1]:0").expect("bind a");
    let b = UdpSocket::bind("[::1]:0").expect("bind b");
    let (a_addr, b_addr) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
    assert!(a_addr.is_ipv6());
    a.send_to(b"six", b_addr).expect("send_to");
    let mut buf = [0; 64];
    let (len, from) = b.recv_from(&mut buf).expect("recv_from");
    assert_eq!((&buf[..len], from), (&b"six"[..], a_addr));
    b.connect(a_addr).expect("connect");
    b.send(b"back").expect("send");
    let (len, from) = a.recv_from(&mut buf).expect("recv_from");
    assert_eq!((&buf[..len], from), (&b"back"[..], b_addr));
}
