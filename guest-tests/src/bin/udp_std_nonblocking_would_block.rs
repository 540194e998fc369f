//! Rust std: set_nonblocking(true) makes recv_from fail with WouldBlock when
//! nothing is queued, and succeed once a datagram is.
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    b.set_nonblocking(true).expect("set_nonblocking");
    let mut buf = [0; 64];
    let error = b.recv_from(&mut buf).expect_err("nothing queued");
    assert_eq!(error.kind(), ErrorKind::WouldBlock);
    a.send_to(b"now", b.local_addr().expect("addr"))
        .expect("send_to");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match b.recv_from(&mut buf) {
            Ok((len, _)) => {
                assert_eq!(&buf[..len], b"now");
                break;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "timed out");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("recv_from: {e}"),
        }
    }
}
