//! What the example guests share: the receive-with-a-deadline pattern that
//! works for `std::net::UdpSocket` on wasm32-wasip2.
//!
//! wasi-libc has no `SO_RCVTIMEO` for UDP sockets, so
//! `UdpSocket::set_read_timeout` fails there. A non-blocking socket polled
//! until a deadline does the same job: each `WouldBlock` sleeps briefly,
//! which WASI turns into a wait on the monotonic clock, not a busy loop.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a guest sleeps between two looks at a non-blocking socket.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Receives one datagram into `buffer` within `timeout`, on a socket set
/// non-blocking. `Ok(None)` when nothing came.
pub fn recv_from_within(
    socket: &UdpSocket,
    buffer: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<(usize, SocketAddr)>> {
    let deadline = Instant::now() + timeout;
    loop {
        match socket.recv_from(buffer) {
            Ok(received) => return Ok(Some(received)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(POLL_INTERVAL);
            }
            Err(error) => return Err(error),
        }
    }
}

/// [`recv_from_within`] for a connected socket.
pub fn recv_within(
    socket: &UdpSocket,
    buffer: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<usize>> {
    Ok(recv_from_within(socket, buffer, timeout)?.map(|(len, _)| len))
}
