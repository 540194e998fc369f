//! `syslog_send SERVER:PORT APP MESSAGE...`: sends each MESSAGE as an RFC
//! 5424 syslog message over UDP (RFC 5426), facility user, severity notice:
//!
//! ```text
//! <13>1 2026-12-03T12:00:00.000000Z wasi-guest APP 1 - [origin software="wasi-udp-example"] MESSAGE
//! ```
//!
//! (The well-known senders, the `syslog` and `fasyslog` crates, do not
//! build for wasm32-wasip2: both ask the OS for the host name, which WASI
//! 0.2 has no call for. The format is small enough to write here.)
use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

/// `PRI` for facility `user` (1) and severity `notice` (5).
const PRIORITY: u8 = 8 + 5;

/// A UTC timestamp as RFC 3339 wants it, from seconds since the epoch.
fn timestamp(since_epoch: std::time::Duration) -> String {
    let seconds = since_epoch.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_micros()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, app, messages @ ..] = &args[..] else {
        panic!("usage: syslog_send SERVER:PORT APP MESSAGE...");
    };
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket
        .connect(server)
        .expect("connect to the syslog server");
    for (id, message) in messages.iter().enumerate() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "<{PRIORITY}>1 {} wasi-guest {app} {} - [origin software=\"wasi-udp-example\"] {message}",
            timestamp(now),
            id + 1
        );
        socket.send(line.as_bytes()).expect("send");
    }
    println!("sent {} messages to {server}", messages.len());
}
