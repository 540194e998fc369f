//! Rust std: connecting an already connected socket to another peer keeps
//! the local port and redirects sends; the old peer's datagrams no longer
//! arrive.
use std::net::UdpSocket;

fn main() {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind c");
    let a_addr = a.local_addr().expect("addr");
    a.connect(b.local_addr().expect("addr")).expect("connect b");
    a.connect(c.local_addr().expect("addr")).expect("connect c");
    assert_eq!(a.local_addr().expect("local_addr").port(), a_addr.port());
    assert_eq!(a.peer_addr().expect("peer"), c.local_addr().expect("addr"));
    a.send(b"to c").expect("send");
    let mut buf = [0; 64];
    let (len, from) = c.recv_from(&mut buf).expect("recv_from");
    assert_eq!((&buf[..len], from), (&b"to c"[..], a_addr));
    b.send_to(b"from the old peer", a_addr).expect("send_to");
    c.send_to(b"from c", a_addr).expect("send_to");
    let len = a.recv(&mut buf).expect("recv");
    assert_eq!(
        &buf[..len],
        b"from c",
        "only the current peer's datagrams arrive"
    );
}
