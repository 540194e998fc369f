//! For the CLI's own features, one mode per run:
//! - `resolve NAME...`: prints `NAME: ADDR ADDR` or `NAME: error ...`
//!   (std's lookup: `wasi:sockets/ip-name-lookup`);
//! - `localhost`: binds `localhost:0` twice and sends from one to the other
//!   by name, as a program written for any OS would;
//! - `read FILE`: prints the file (a preopened directory's);
//! - `env NAME...`: prints each variable;
//! - `alloc MIB`: grows its memory a MiB at a time, printing each step;
//! - `spin`: loops forever without calling the host;
//! - `wait`: waits forever for a datagram that never comes.
use std::net::{ToSocketAddrs, UdpSocket};

use guest_tests::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = args.split_first().expect("a mode");
    match mode.as_str() {
        "resolve" => {
            for name in rest {
                match (name.as_str(), 0).to_socket_addrs() {
                    Ok(addresses) => {
                        let list: Vec<String> =
                            addresses.map(|address| address.ip().to_string()).collect();
                        println!("{name}: {}", list.join(" "));
                    }
                    Err(error) => println!("{name}: error {error}"),
                }
            }
        }
        "localhost" => {
            let receiver = UdpSocket::bind("localhost:0").expect("bind localhost:0");
            let sender = UdpSocket::bind("localhost:0").expect("bind localhost:0");
            let port = receiver.local_addr().expect("local address").port();
            sender
                .send_to(b"by name", ("localhost", port))
                .expect("send to localhost");
            let mut buffer = [0; 64];
            let (len, from) = receiver.recv_from(&mut buffer).expect("receive");
            assert_eq!(&buffer[..len], b"by name");
            println!(
                "localhost works: {} -> {}",
                from,
                receiver.local_addr().expect("addr")
            );
        }
        "read" => {
            let text = std::fs::read_to_string(&rest[0]).expect("read the file");
            print!("{text}");
        }
        "env" => {
            for name in rest {
                println!("{name}={}", std::env::var(name).unwrap_or_default());
            }
        }
        "alloc" => {
            let mib: usize = rest[0].parse().expect("MiB");
            let mut held: Vec<Vec<u8>> = Vec::new();
            for step in 1..=mib {
                held.push(vec![1; 1 << 20]);
                println!("allocated {step} MiB");
            }
        }
        "spin" => {
            println!("spinning");
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "wait" => {
            let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
            let (incoming, _outgoing) = socket.stream(None).expect("stream");
            println!("waiting");
            let pollable = incoming.subscribe();
            loop {
                pollable.block();
            }
        }
        other => panic!("unknown mode {other}"),
    }
}
