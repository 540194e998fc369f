//! A small game-state loop over UDP: fixed-rate updates with sequence
//! numbers, and acknowledgements that tolerate loss and reordering.
//!
//! - `game_loop server ADDR`: answers each update `seq x y` with `ack seq`
//!   and the newest state it holds; stops after an update with `x = -1`.
//! - `game_loop client SERVER:PORT TICKS HZ`: moves a player for TICKS
//!   ticks at HZ per second, sending its state every tick whether or not
//!   the last one was acknowledged (newer state replaces lost state), and
//!   prints `ticks T acked A lost L newest-acked N`.
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use example_guests::recv_from_within;

fn server(addr: &str) {
    let socket = UdpSocket::bind(addr).expect("bind");
    println!("listening on {}", socket.local_addr().expect("addr"));
    let mut newest = 0u32;
    let mut buffer = [0u8; 512];
    loop {
        let (len, from) = socket.recv_from(&mut buffer).expect("receive");
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (Some(seq), Some(x)) = (
            fields.first().and_then(|s| s.parse::<u32>().ok()),
            fields.get(1).and_then(|s| s.parse::<i32>().ok()),
        ) else {
            continue;
        };
        // An update older than what is held arrived late: acknowledged, not
        // applied.
        newest = newest.max(seq);
        socket
            .send_to(format!("ack {seq} newest {newest}").as_bytes(), from)
            .expect("ack");
        if x == -1 {
            println!("game over after update {newest}");
            return;
        }
    }
}

fn client(server: &str, ticks: u32, hz: u32) {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket.connect(server).expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");
    let tick = Duration::from_secs(1) / hz.max(1);
    let start = Instant::now();
    let (mut acked, mut newest_acked) = (0u32, 0u32);
    let mut buffer = [0u8; 512];
    for seq in 1..=ticks {
        let x = if seq == ticks { -1 } else { (seq % 100) as i32 };
        socket
            .send(format!("{seq} {x} {}", seq / 2).as_bytes())
            .expect("send update");
        // Read whatever acknowledgements arrived until the next tick.
        let next_tick = start + tick * seq;
        while let Some(left) = next_tick.checked_duration_since(Instant::now()) {
            match recv_from_within(&socket, &mut buffer, left) {
                Ok(Some((len, _))) => {
                    let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
                    if let Some(seq) = text
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse::<u32>().ok())
                    {
                        acked += 1;
                        newest_acked = newest_acked.max(seq);
                    }
                }
                Ok(None) => break,
                Err(error) => panic!("receive: {error}"),
            }
        }
    }
    // The last acknowledgements get a moment to arrive.
    while let Ok(Some((len, _))) =
        recv_from_within(&socket, &mut buffer, Duration::from_millis(200))
    {
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if let Some(seq) = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
        {
            acked += 1;
            newest_acked = newest_acked.max(seq);
        }
    }
    println!(
        "ticks {ticks} acked {acked} lost {} newest-acked {newest_acked}",
        ticks - acked.min(ticks)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["server", addr] => server(addr),
        ["client", server, ticks, hz] => client(
            server,
            ticks.parse().expect("TICKS"),
            hz.parse().expect("HZ"),
        ),
        _ => panic!("usage: game_loop server ADDR | game_loop client SERVER:PORT TICKS HZ"),
    }
}
