//! `echo_client SERVER:PORT COUNT`: sends COUNT numbered datagrams to an
//! echo server and checks each echo, retrying a lost one up to three times:
//!
//! ```text
//! 5 of 5 echoed, 0 retries
//! ```
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::Duration;

use example_guests::recv_within;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, count] = &args[..] else {
        eprintln!("usage: echo_client SERVER:PORT COUNT");
        return ExitCode::from(2);
    };
    let count: u32 = count.parse().expect("COUNT");
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket.connect(server).expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");
    let mut buffer = [0u8; 1500];
    let (mut echoed, mut retries) = (0, 0);
    for n in 0..count {
        let message = format!("echo {n}");
        for attempt in 0..3 {
            if attempt > 0 {
                retries += 1;
            }
            socket.send(message.as_bytes()).expect("send");
            match recv_within(&socket, &mut buffer, Duration::from_millis(500)) {
                Ok(Some(len)) if buffer[..len] == *message.as_bytes() => {
                    echoed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(error) => {
                    eprintln!("echo_client: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!("{echoed} of {count} echoed, {retries} retries");
    if echoed == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
