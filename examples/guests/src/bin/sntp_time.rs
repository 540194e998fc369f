//! `sntp_time SERVER:PORT`: asks an NTP server for the time with the
//! `sntpc` crate, over a `std::net::UdpSocket` wrapped so that a lost reply
//! ends the wait after 2 s (wasi-libc has no receive timeout for UDP), and
//! prints what the server said:
//!
//! ```text
//! stratum 8, server time 1796302800.123456 s, offset 42 us, round trip 180 us
//! ```
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use example_guests::recv_from_within;
use sntpc::{NtpContext, NtpTimestampGenerator, NtpUdpSocket};

/// A UDP socket whose receive gives up after a while.
struct TimedSocket(UdpSocket);

impl NtpUdpSocket for TimedSocket {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> sntpc::Result<usize> {
        self.0.send_to(buf, addr).map_err(|_| sntpc::Error::Network)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> sntpc::Result<(usize, SocketAddr)> {
        match recv_from_within(&self.0, buf, Duration::from_secs(2)) {
            Ok(Some(received)) => Ok(received),
            _ => Err(sntpc::Error::Network),
        }
    }
}

/// The guest's wall clock, as sntpc wants it.
#[derive(Clone, Copy, Default)]
struct WallClock(Duration);

impl NtpTimestampGenerator for WallClock {
    fn init(&mut self) {
        self.0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
    }

    fn timestamp_sec(&self) -> u64 {
        self.0.as_secs()
    }

    fn timestamp_subsec_micros(&self) -> u32 {
        self.0.subsec_micros()
    }
}

fn main() -> ExitCode {
    let Some(server) = std::env::args().nth(1) else {
        eprintln!("usage: sntp_time SERVER:PORT");
        return ExitCode::from(2);
    };
    let server: SocketAddr = server.parse().expect("SERVER:PORT");
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .expect("bind");
    socket.set_nonblocking(true).expect("non-blocking");
    let context = NtpContext::new(WallClock::default());
    match sntpc::sync::get_time(server, &TimedSocket(socket), context) {
        Ok(time) => {
            println!(
                "stratum {}, server time {}.{:06} s, offset {} us, round trip {} us",
                time.stratum(),
                time.sec(),
                sntpc::fraction_to_microseconds(time.sec_fraction()),
                time.offset(),
                time.roundtrip()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sntp_time: {error:?}");
            ExitCode::FAILURE
        }
    }
}
