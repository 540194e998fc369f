//! The workloads natively, with std's UdpSocket, in the same pattern as the
//! guests: one process, two sockets, loopback.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::{Sample, latency_sample};

/// `count` datagrams of `size` bytes, at most `window` in flight (0: none).
pub fn blast(count: u64, size: usize, window: u64) -> Sample {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind rx");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind tx");
    tx.connect(rx.local_addr().expect("addr")).expect("connect");
    // The guests ask for the same receive buffer.
    socket2::SockRef::from(&rx)
        .set_recv_buffer_size(4 << 20)
        .expect("receive buffer");
    rx.set_nonblocking(true).expect("nonblocking");
    tx.set_nonblocking(true).expect("nonblocking");
    let payload = vec![0xab; size];
    let mut buffer = vec![0; 65536];
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut idle_since: Option<Instant> = None;
    while received < count && Instant::now() < deadline {
        let limit = if window == 0 {
            count
        } else {
            (received + window).min(count)
        };
        // At most 64 per turn, as the guest's send batches are.
        let limit = limit.min(sent + 64);
        while sent < limit {
            match tx.send(&payload) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        let mut got = 0;
        loop {
            match rx.recv(&mut buffer) {
                Ok(_) => got += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
            if got == 64 {
                break;
            }
        }
        received += got;
        if got > 0 {
            idle_since = None;
        } else if sent == count || (window != 0 && sent - received >= window) {
            // Lost datagrams never come: give up after 100 ms of silence.
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Sample {
        value: received as f64 / elapsed,
        extra: (count - received) as f64,
    }
}

/// `rounds` round trips of a 64-byte datagram between two blocking sockets.
pub fn pingpong(rounds: usize) -> Sample {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    a.connect(b.local_addr().expect("addr")).expect("connect a");
    b.connect(a.local_addr().expect("addr")).expect("connect b");
    for socket in [&a, &b] {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    let ping = [1u8; 64];
    let mut buffer = [0u8; 128];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        a.send(&ping).expect("send a");
        b.recv(&mut buffer).expect("recv b");
        b.send(&ping).expect("send b");
        a.recv(&mut buffer).expect("recv a");
        times.push(start.elapsed().as_nanos() as f64);
    }
    latency_sample(&mut times)
}
