//! Rust std: connect, peer_addr, send and recv on a connected socket; the
//! local port stays; peer_addr fails before connect.
use std::net::UdpSocket;

fn main() {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    let (a_addr, b_addr) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
    assert!(a.peer_addr().is_err(), "not connected yet");
    a.connect(b_addr).expect("connect");
    assert_eq!(a.peer_addr().expect("peer_addr"), b_addr);
    assert_eq!(a.local_addr().expect("local_addr").port(), a_addr.port());
    a.send(b"connected").expect("send");
    let mut buf = [0; 64];
    let (len, from) = b.recv_from(&mut buf).expect("recv_from");
    assert_eq!((&buf[..len], from), (&b"connected"[..], a_addr));
    b.send_to(b"reply", a_addr).expect("send_to");
    let len = a.recv(&mut buf).expect("recv");
    assert_eq!(&buf[..len], b"reply");
}
