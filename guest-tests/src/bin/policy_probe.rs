//! Runs the UDP operations named by its arguments, one per argument, and
//! prints each one's outcome, so that host tests can check what a policy
//! lets through. Each argument is a command:
//!
//! - `socket 4` / `socket 6`: a fresh socket (the previous one is dropped);
//! - `bind ADDR`: start-bind and finish-bind;
//! - `connect ADDR [flow=N]`: `stream(some(ADDR))` (with an IPv6 flow label);
//! - `unconnect`: `stream(none)`;
//! - `send ADDR|- TEXT [flow=N]`: one datagram to ADDR (or `-`: the peer);
//! - `send-many N ADDR TEXT`: N sends of one datagram each, counted by outcome;
//! - `recv MS`: waits up to MS milliseconds for one datagram;
//! - `local`: the bound address.
//!
//! Each prints `> COMMAND: OUTCOME`, where an outcome is `ok`, `ok ADDR`,
//! `error CODE` (the WIT error code's name), `from ADDR: TEXT` or `nothing`.
//! Exits 0 unless a command is malformed.
use std::net::SocketAddr;

use guest_tests::*;

struct Probe {
    socket: Option<UdpSocket>,
    streams: Option<(IncomingDatagramStream, OutgoingDatagramStream)>,
}

fn code_name(code: ErrorCode) -> &'static str {
    code.name()
}

fn to_wit(addr: SocketAddr, flow_info: u32) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info,
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

fn from_wit(addr: &IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddr::from(([a, b, c, d], v4.port))
        }
        IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddr::from(([a, b, c, d, e, f, g, h], v6.port))
        }
    }
}

fn parse_addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("`{text}` is not an address"))
}

/// `flow=N` among the words, or 0.
fn flow(words: &[&str]) -> u32 {
    words
        .iter()
        .find_map(|w| w.strip_prefix("flow="))
        .map(|n| n.parse().expect("flow label"))
        .unwrap_or(0)
}

fn outcome<T>(result: Result<T, ErrorCode>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => ok(value),
        Err(code) => format!("error {}", code_name(code)),
    }
}

impl Probe {
    fn socket(&self) -> &UdpSocket {
        self.socket.as_ref().expect("`socket` first")
    }

    fn outgoing(&self) -> &OutgoingDatagramStream {
        &self
            .streams
            .as_ref()
            .expect("`connect` or `unconnect` first")
            .1
    }

    fn run(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["socket", family] => {
                self.streams = None;
                let family = match *family {
                    "4" => IpAddressFamily::Ipv4,
                    "6" => IpAddressFamily::Ipv6,
                    other => panic!("family `{other}`"),
                };
                self.socket = None;
                outcome(create_udp_socket(family), |socket| {
                    self.socket = Some(socket);
                    "ok".into()
                })
            }
            ["bind", addr] => outcome(bind(self.socket(), to_wit(parse_addr(addr), 0)), |()| {
                "ok".into()
            }),
            ["connect", addr, ..] => {
                self.streams = None;
                let remote = to_wit(parse_addr(addr), flow(&words));
                outcome(self.socket().stream(Some(remote)), |streams| {
                    self.streams = Some(streams);
                    "ok".into()
                })
            }
            ["unconnect"] => {
                self.streams = None;
                outcome(self.socket().stream(None), |streams| {
                    self.streams = Some(streams);
                    "ok".into()
                })
            }
            ["send", to, text, ..] => {
                let remote_address = match *to {
                    "-" => None,
                    addr => Some(to_wit(parse_addr(addr), flow(&words))),
                };
                let datagram = OutgoingDatagram {
                    data: text.as_bytes().to_vec(),
                    remote_address,
                };
                self.send_one(&datagram)
            }
            ["send-many", count, to, text] => {
                let count: u32 = count.parse().expect("count");
                let datagram = OutgoingDatagram {
                    data: text.as_bytes().to_vec(),
                    remote_address: Some(to_wit(parse_addr(to), 0)),
                };
                let mut tally: Vec<(String, u32)> = Vec::new();
                for _ in 0..count {
                    let result = self.send_one(&datagram);
                    match tally.iter_mut().find(|(r, _)| *r == result) {
                        Some((_, n)) => *n += 1,
                        None => tally.push((result, 1)),
                    }
                }
                let parts: Vec<String> = tally.iter().map(|(r, n)| format!("{n}x {r}")).collect();
                parts.join(", ")
            }
            ["recv", millis] => {
                let millis: u64 = millis.parse().expect("milliseconds");
                let incoming = &self.streams.as_ref().expect("streams first").0;
                let deadline = monotonic_clock::now() + millis * 1_000_000;
                let pollable = incoming.subscribe();
                loop {
                    match incoming.receive(1) {
                        Err(code) => break format!("error {}", code_name(code)),
                        Ok(batch) if !batch.is_empty() => {
                            let datagram = &batch[0];
                            break format!(
                                "from {}: {}",
                                from_wit(&datagram.remote_address),
                                String::from_utf8_lossy(&datagram.data)
                            );
                        }
                        Ok(_) => {
                            let now = monotonic_clock::now();
                            if now >= deadline {
                                break "nothing".into();
                            }
                            wait_at_most(&pollable, deadline - now);
                        }
                    }
                }
            }
            ["local"] => outcome(self.socket().local_address(), |addr| {
                format!("ok {}", from_wit(&addr))
            }),
            _ => panic!("unknown command `{command}`"),
        }
    }

    fn send_one(&self, datagram: &OutgoingDatagram) -> String {
        let outgoing = self.outgoing();
        let permitted = match outgoing.check_send() {
            Ok(0) => {
                wait(&outgoing.subscribe());
                outgoing.check_send()
            }
            other => other,
        };
        if let Err(code) = permitted {
            return format!("error {}", code_name(code));
        }
        outcome(outgoing.send(std::slice::from_ref(datagram)), |sent| {
            format!("ok {sent}")
        })
    }
}

fn main() {
    let mut probe = Probe {
        socket: None,
        streams: None,
    };
    for command in std::env::args().skip(1) {
        let result = probe.run(&command);
        println!("> {command}: {result}");
    }
}
