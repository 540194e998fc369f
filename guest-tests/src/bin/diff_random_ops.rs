//! Differential guest: a seeded random sequence of UDP calls, with valid and
//! invalid arguments, printing one line per call and its result in a form
//! that does not depend on the host (ports masked). Arguments: SEED [STEPS].
//!
//! The sequence never breaks the WIT's contract on purpose (no send beyond a
//! permit, no stream while streams are alive), so every host should print
//! the same lines; `wasi-udp-conformance --differential` compares two hosts.
use guest_tests::*;

/// xorshift64*: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Unbound,
    BindStarted,
    Bound,
}

struct Sock {
    socket: UdpSocket,
    family: IpAddressFamily,
    state: State,
    /// Bound address, for others to send to.
    addr: Option<IpSocketAddress>,
    /// Indices of this socket's latest streams, while either is alive.
    streams: Option<(usize, usize)>,
    /// stream() has been called at least once.
    streamed: bool,
    /// stream(some) has been called at least once.
    connected_once: bool,
}

impl Sock {
    fn tag(&self) -> String {
        let state = match self.state {
            State::Unbound => "unbound",
            State::BindStarted => "bind-started",
            State::Bound => "bound",
        };
        let mut tag = state.to_owned();
        if self.streamed {
            tag.push_str(",streamed");
        }
        if self.connected_once {
            tag.push_str(",connected-once");
        }
        tag
    }
}

fn show_addr(addr: &IpSocketAddress) -> String {
    let masked = |port: u16| if port == 0 { "0" } else { "P" };
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            format!("{x}.{y}.{z}.{w}:{}", masked(a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (_, _, _, _, _, _, _, last) = a.address;
            format!("[..:{last:x}]:{}", masked(a.port))
        }
    }
}

fn show<T>(result: Result<T, ErrorCode>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok({})", ok(value)),
        Err(code) => format!("err({})", code.name()),
    }
}

fn other(family: IpAddressFamily) -> IpAddressFamily {
    match family {
        IpAddressFamily::Ipv4 => IpAddressFamily::Ipv6,
        IpAddressFamily::Ipv6 => IpAddressFamily::Ipv4,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut sockets: Vec<Option<Sock>> = Vec::new();
    let mut incoming: Vec<Option<IncomingDatagramStream>> = Vec::new();
    let mut outgoing: Vec<Option<(OutgoingDatagramStream, Option<u64>)>> = Vec::new();

    for step in 0..steps {
        let live: Vec<usize> = (0..sockets.len())
            .filter(|&k| sockets[k].is_some())
            .collect();
        let op = if live.is_empty() { 0 } else { rng.below(12) };
        let line = match op {
            0 | 1 if live.len() < 6 || live.is_empty() => {
                let family = if rng.below(2) == 0 {
                    IpAddressFamily::Ipv4
                } else {
                    IpAddressFamily::Ipv6
                };
                let result = create_udp_socket(family);
                let text = show(result.as_ref().map(|_| ()).map_err(|e| *e), |()| {
                    format!("s{}", sockets.len())
                });
                if let Ok(socket) = result {
                    sockets.push(Some(Sock {
                        socket,
                        family,
                        state: State::Unbound,
                        addr: None,
                        streams: None,
                        streamed: false,
                        connected_once: false,
                    }));
                }
                format!("create {family:?} -> {text}")
            }
            2 => {
                let k = live[rng.below(live.len())];
                let family = sockets[k]
                    .as_ref()
                    .map(|s| s.family)
                    .unwrap_or(IpAddressFamily::Ipv4);
                let bound_peers: Vec<IpSocketAddress> = sockets
                    .iter()
                    .flatten()
                    .filter(|s| s.family == family)
                    .filter_map(|s| s.addr)
                    .collect();
                let (what, addr) = match rng.below(4) {
                    0 => ("loopback:0", loopback(family, 0)),
                    1 => ("unspecified:0", unspecified(family, 0)),
                    2 => ("other-family:0", loopback(other(family), 0)),
                    _ => match bound_peers.first() {
                        Some(peer) => ("port-in-use", *peer),
                        None => ("loopback:0", loopback(family, 0)),
                    },
                };
                let sock = sockets[k].as_mut().expect("live");
                let tag = sock.tag();
                let result = sock.socket.start_bind(&network(), addr);
                if result.is_ok() {
                    sock.state = State::BindStarted;
                }
                let mut line = format!(
                    "start-bind s{k}[{tag}] {what} -> {}",
                    show(result, |()| String::new())
                );
                // Mostly finish at once, so the rest of the sequence runs on
                // bound sockets rather than in the bind-in-progress window.
                if sock.state == State::BindStarted && rng.below(4) != 0 {
                    let finished = sock.socket.finish_bind();
                    if finished.is_ok() {
                        sock.state = State::Bound;
                        sock.addr = sock
                            .socket
                            .local_address()
                            .ok()
                            .map(|a| with_port(loopback(sock.family, 0), port(&a)));
                    }
                    line.push_str(&format!(
                        "; finish-bind -> {}",
                        show(finished, |()| String::new())
                    ));
                }
                line
            }
            3 => {
                let k = live[rng.below(live.len())];
                let sock = sockets[k].as_mut().expect("live");
                let tag = sock.tag();
                let result = sock.socket.finish_bind();
                if result.is_ok() {
                    sock.state = State::Bound;
                    // Others send to the bound port on loopback.
                    sock.addr = sock
                        .socket
                        .local_address()
                        .ok()
                        .map(|a| with_port(loopback(sock.family, 0), port(&a)));
                }
                format!(
                    "finish-bind s{k}[{tag}] -> {}",
                    show(result, |()| String::new())
                )
            }
            4 => {
                let k = live[rng.below(live.len())];
                let sock = sockets[k].as_ref().expect("live");
                format!(
                    "local-address s{k}[{}] -> {}",
                    sock.tag(),
                    show(sock.socket.local_address(), |a| show_addr(&a))
                )
            }
            5 => {
                let k = live[rng.below(live.len())];
                let sock = sockets[k].as_ref().expect("live");
                format!(
                    "remote-address s{k}[{}] -> {}",
                    sock.tag(),
                    show(sock.socket.remote_address(), |a| show_addr(&a))
                )
            }
            6 => {
                let k = live[rng.below(live.len())];
                if sockets[k].as_ref().is_some_and(|s| s.streams.is_some()) {
                    // Streams alive: the WIT lets hosts trap, so skip.
                    continue;
                }
                let family = sockets[k]
                    .as_ref()
                    .map(|s| s.family)
                    .unwrap_or(IpAddressFamily::Ipv4);
                let peers: Vec<IpSocketAddress> = sockets
                    .iter()
                    .enumerate()
                    .filter(|(j, s)| *j != k && s.as_ref().is_some_and(|s| s.family == family))
                    .filter_map(|(_, s)| s.as_ref().and_then(|s| s.addr))
                    .collect();
                let (what, remote) = match rng.below(5) {
                    0 | 1 => ("none", None),
                    2 => match peers.first() {
                        Some(peer) => ("peer", Some(*peer)),
                        None => ("none", None),
                    },
                    3 => ("loopback:0", Some(loopback(family, 0))),
                    _ => ("other-family", Some(loopback(other(family), 9))),
                };
                let sock = sockets[k].as_mut().expect("live");
                let tag = sock.tag();
                let result = sock.socket.stream(remote);
                let text = show(result.as_ref().map(|_| ()).map_err(|e| *e), |()| {
                    format!("i{} o{}", incoming.len(), outgoing.len())
                });
                if let Ok((i, o)) = result {
                    sock.streams = Some((incoming.len(), outgoing.len()));
                    sock.streamed = true;
                    sock.connected_once |= remote.is_some();
                    incoming.push(Some(i));
                    outgoing.push(Some((o, None)));
                }
                format!("stream s{k}[{tag}] {what} -> {text}")
            }
            7 => {
                let live_out: Vec<usize> = (0..outgoing.len())
                    .filter(|&o| outgoing[o].is_some())
                    .collect();
                if live_out.is_empty() {
                    continue;
                }
                let o = live_out[rng.below(live_out.len())];
                let (stream, permit) = outgoing[o].as_mut().expect("live");
                let result = stream.check_send();
                *permit = result.as_ref().ok().copied();
                format!(
                    "check-send o{o} -> {}",
                    show(result, |n| if n >= 1 { "≥1".into() } else { "0".into() })
                )
            }
            8 => {
                let ready: Vec<usize> = (0..outgoing.len())
                    .filter(|&o| outgoing[o].as_ref().is_some_and(|(_, p)| p.is_some()))
                    .collect();
                if ready.is_empty() {
                    continue;
                }
                let o = ready[rng.below(ready.len())];
                let targets: Vec<IpSocketAddress> =
                    sockets.iter().flatten().filter_map(|s| s.addr).collect();
                let (stream, permit) = outgoing[o].as_mut().expect("live");
                let allowed = permit.take().unwrap_or(0).min(3) as usize;
                let count = rng.below(allowed + 1);
                let mut datagrams = Vec::new();
                let mut described = Vec::new();
                for _ in 0..count {
                    let len = rng.below(40);
                    let (what, to) = match rng.below(4) {
                        0 => ("none", None),
                        1 | 2 if !targets.is_empty() => {
                            ("socket", Some(targets[rng.below(targets.len())]))
                        }
                        _ => (
                            "port-0",
                            Some(IpSocketAddress::Ipv4(Ipv4SocketAddress {
                                port: 0,
                                address: (127, 0, 0, 1),
                            })),
                        ),
                    };
                    described.push(format!("{len}B->{what}"));
                    datagrams.push(OutgoingDatagram {
                        data: vec![len as u8; len],
                        remote_address: to,
                    });
                }
                format!(
                    "send o{o} [{}] -> {}",
                    described.join(" "),
                    show(stream.send(&datagrams), |n| n.to_string())
                )
            }
            9 => {
                let live_in: Vec<usize> = (0..incoming.len())
                    .filter(|&i| incoming[i].is_some())
                    .collect();
                if live_in.is_empty() {
                    continue;
                }
                let i = live_in[rng.below(live_in.len())];
                let max = [0, 1, 4][rng.below(3)];
                let result = incoming[i].as_ref().expect("live").receive(max);
                format!(
                    "receive i{i} max {max} -> {}",
                    show(result, |got| got
                        .iter()
                        .map(|d| d.data.len().to_string())
                        .collect::<Vec<_>>()
                        .join(","))
                )
            }
            10 => {
                // Drop one socket's streams (both), so it may stream again.
                let with_streams: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|&k| sockets[k].as_ref().is_some_and(|s| s.streams.is_some()))
                    .collect();
                if with_streams.is_empty() {
                    continue;
                }
                let k = with_streams[rng.below(with_streams.len())];
                let sock = sockets[k].as_mut().expect("live");
                let (i, o) = sock.streams.take().expect("streams");
                incoming[i] = None;
                outgoing[o] = None;
                format!("drop-streams s{k} -> ok")
            }
            _ => {
                let k = live[rng.below(live.len())];
                let sock = sockets[k].as_ref().expect("live");
                let value = [0u8, 1, 64][rng.below(3)];
                let set = show(sock.socket.set_unicast_hop_limit(value), |()| String::new());
                let get = show(sock.socket.unicast_hop_limit(), |v| v.to_string());
                format!(
                    "hop-limit s{k}[{}] set {value} -> {set}, get -> {get}",
                    sock.tag()
                )
            }
        };
        println!("#{step} {line}");
    }
    println!("end");
}
