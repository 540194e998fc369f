//! A plain Rust program using std::net::UdpSocket (over wasi-libc): bind,
//! send_to/recv_from, connect/send/recv, peer_addr, set_nonblocking and
//! WouldBlock, reconnect to another peer, IPv4 and IPv6. (wasi-libc has no
//! SO_RCVTIMEO for UDP, so timed waits poll a non-blocking socket.)
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

/// recv_from on a non-blocking socket, retried until `TIMEOUT`.
fn recv_from_within(socket: &UdpSocket, buf: &mut [u8]) -> (usize, std::net::SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match socket.recv_from(buf) {
            Ok(received) => return received,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "timed out in recv_from");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("recv_from: {e}"),
        }
    }
}

fn main() {
    for localhost in ["127.0.0.1:0", "[::1]:0"] {
        let a = UdpSocket::bind(localhost).expect("bind a");
        let b = UdpSocket::bind(localhost).expect("bind b");
        let a_addr = a.local_addr().expect("local_addr");
        let b_addr = b.local_addr().expect("local_addr");
        assert_ne!(a_addr.port(), 0);

        // Blocking send_to / recv_from (the host bounds the run's time).
        a.send_to(b"hello", b_addr).expect("send_to");
        let mut buf = [0; 64];
        let (len, from) = b.recv_from(&mut buf).expect("recv_from");
        assert_eq!(&buf[..len], b"hello");
        assert_eq!(from, a_addr);

        // Non-blocking: WouldBlock when nothing is queued.
        b.set_nonblocking(true).expect("set_nonblocking");
        let error = b.recv_from(&mut buf).expect_err("nothing queued");
        assert_eq!(error.kind(), ErrorKind::WouldBlock);

        // connect / peer_addr / send / recv.
        assert!(a.peer_addr().is_err(), "not connected yet");
        a.connect(b_addr).expect("connect");
        assert_eq!(a.peer_addr().expect("peer_addr"), b_addr);
        assert_eq!(a.local_addr().expect("local_addr").port(), a_addr.port());
        a.send(b"connected").expect("send");
        let (len, from) = recv_from_within(&b, &mut buf);
        assert_eq!(&buf[..len], b"connected");
        assert_eq!(from, a_addr);

        // Reconnect to another peer; the local port stays.
        let c = UdpSocket::bind(localhost).expect("bind c");
        c.set_nonblocking(true).expect("set_nonblocking");
        a.connect(c.local_addr().expect("addr")).expect("reconnect");
        assert_eq!(a.local_addr().expect("local_addr").port(), a_addr.port());
        a.send(b"to c").expect("send");
        let (len, _) = recv_from_within(&c, &mut buf);
        assert_eq!(&buf[..len], b"to c");
        c.send_to(b"reply", a_addr).expect("send_to a");
        let len = a.recv(&mut buf).expect("blocking recv");
        assert_eq!(&buf[..len], b"reply");
    }
    println!("std::net::UdpSocket works");
}
