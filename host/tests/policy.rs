//! The policy as a stateful firewall, on loopback: every datagram that
//! leaves needs a `send` rule (connected or not), replies from where a
//! socket sent are admitted without a `receive` rule, unsolicited datagrams
//! need one, and deny rules refuse replies too. Each path is pinned both
//! ways, with the outcome the guest sees and the store's counters.
//!
//! The guest is `policy_probe`, which runs the commands it is given. The
//! peer is a thread here that answers each datagram from 127.0.0.2 and
//! has a stranger at 127.0.0.3 send one too.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Outcome, run_with_args};
use wasi_udp_host::{Rule, UdpCtx};

/// Answers every datagram from its own address (`echo:TEXT`), and has a
/// stranger send `stranger` to the same source. Stops when dropped, or
/// after 30 s.
struct Peer {
    addr: SocketAddr,
    stranger: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    fn spawn() -> Self {
        let socket = UdpSocket::bind("127.0.0.2:0").expect("bind the peer");
        let stranger = UdpSocket::bind("127.0.0.3:0").expect("bind the stranger");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stranger_addr = stranger.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut buffer = [0; 2048];
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buffer[..len]);
                let _ = socket.send_to(&reply, from);
                let _ = stranger.send_to(b"stranger", from);
            }
        });
        Self {
            addr,
            stranger: stranger_addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn ctx(allow: &[&str], deny: &[&str]) -> UdpCtx {
    let mut builder = UdpCtx::builder();
    for rule in allow {
        builder.allow(rule.parse::<Rule>().expect("allow rule"));
    }
    for rule in deny {
        builder.deny(rule.parse::<Rule>().expect("deny rule"));
    }
    builder.build()
}

fn probe(udp: UdpCtx, commands: &[String]) -> Outcome {
    let args: Vec<&str> = commands.iter().map(String::as_str).collect();
    let outcome = run_with_args("policy_probe", udp, &args);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    outcome
}

/// The outcome printed for `command`.
#[track_caller]
fn result<'a>(outcome: &'a Outcome, command: &str) -> &'a str {
    let prefix = format!("> {command}: ");
    outcome
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no outcome for `{command}`: {outcome:?}"))
}

fn commands(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| (*c).to_owned()).collect()
}

#[test]
fn a_send_rule_admits_replies_but_not_strangers() {
    let peer = Peer::spawn();
    let send = format!("send {} hi", peer.addr);
    let run = commands(&[
        "socket 4",
        "bind 127.0.0.1:0",
        "unconnect",
        &send,
        "recv 5000",
        "recv 300",
    ]);
    let outcome = probe(
        ctx(&["bind:127.0.0.1", &format!("send:{}", peer.addr)], &[]),
        &run,
    );
    assert_eq!(result(&outcome, &send), "ok 1");
    assert_eq!(
        result(&outcome, "recv 5000"),
        format!("from {}: echo:hi", peer.addr)
    );
    assert_eq!(result(&outcome, "recv 300"), "nothing");
    assert_eq!(outcome.stats.dropped_not_admitted, 1, "{outcome:?}");
    assert_eq!(outcome.stats.datagrams_received, 1);

    // A receive rule admits the stranger too.
    let outcome = probe(
        ctx(
            &[
                "bind:127.0.0.1",
                &format!("send:{}", peer.addr),
                "receive:127.0.0.3",
            ],
            &[],
        ),
        &run,
    );
    assert_eq!(
        result(&outcome, "recv 300"),
        format!("from {}: stranger", peer.stranger)
    );
    assert_eq!(outcome.stats.datagrams_dropped(), 0, "{outcome:?}");
}

#[test]
fn a_deny_rule_refuses_replies_too() {
    let peer = Peer::spawn();
    let send = format!("send {} hi", peer.addr);
    let outcome = probe(
        ctx(
            &["bind:127.0.0.1", &format!("send:{}", peer.addr)],
            &["receive:127.0.0.2"],
        ),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            "unconnect",
            &send,
            "recv 1000",
        ]),
    );
    assert_eq!(result(&outcome, &send), "ok 1");
    assert_eq!(result(&outcome, "recv 1000"), "nothing");
    assert_eq!(outcome.stats.dropped_forbidden, 1, "{outcome:?}");
}

#[test]
fn without_a_send_rule_nothing_leaves_connected_or_not() {
    let peer = Peer::spawn();
    let connect = format!("connect {}", peer.addr);
    let send = format!("send {} hi", peer.addr);
    // connect and receive, but not send: the connect itself is refused.
    let outcome = probe(
        ctx(&["bind:127.0.0.1", "connect,receive:127.0.0.2"], &[]),
        &commands(&["socket 4", "bind 127.0.0.1:0", &connect, "unconnect", &send]),
    );
    assert_eq!(result(&outcome, &connect), "error access-denied");
    assert_eq!(result(&outcome, &send), "error access-denied");
    assert_eq!(outcome.stats.denied, 2, "{outcome:?}");
    assert_eq!(outcome.stats.errors, 2, "both refusals reach the guest");
    assert_eq!(outcome.stats.datagrams_sent, 0);

    // connect and send: the connected stream sends, and hears the reply.
    let outcome = probe(
        ctx(&["bind:127.0.0.1", "connect,send:127.0.0.2"], &[]),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            &connect,
            "send - hi",
            "recv 5000",
        ]),
    );
    assert_eq!(result(&outcome, &connect), "ok");
    assert_eq!(result(&outcome, "send - hi"), "ok 1");
    assert_eq!(
        result(&outcome, "recv 5000"),
        format!("from {}: echo:hi", peer.addr)
    );
    assert_eq!(outcome.stats.denied, 0, "{outcome:?}");
    assert_eq!(outcome.stats.errors, 0, "{outcome:?}");
    assert_eq!(
        (outcome.stats.bytes_sent, outcome.stats.bytes_received),
        (2, 7)
    );
}

#[test]
fn a_new_association_is_checked_again() {
    let peer = Peer::spawn();
    let connect = format!("connect {}", peer.addr);
    let outcome = probe(
        ctx(
            &["bind:127.0.0.1", &format!("connect,send:{}", peer.addr)],
            &[],
        ),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            &connect,
            // Re-stream to another peer.
            "connect 127.0.0.4:9",
            // stream(none) after a connect: unconnected sends need rules.
            &connect,
            "unconnect",
            "send 127.0.0.4:9 x",
            "send - x",
        ]),
    );
    assert_eq!(
        result(&outcome, "connect 127.0.0.4:9"),
        "error access-denied"
    );
    assert_eq!(
        result(&outcome, "send 127.0.0.4:9 x"),
        "error access-denied"
    );
    // No peer once unconnected.
    assert_eq!(result(&outcome, "send - x"), "error invalid-argument");
    assert_eq!(outcome.stats.denied, 2, "{outcome:?}");
    assert_eq!(outcome.stats.datagrams_sent, 0);
}

#[test]
fn a_connected_stream_hears_its_peer_after_disconnecting_too() {
    // Replies that arrive after stream(none) are still replies.
    let peer = Peer::spawn();
    let connect = format!("connect {}", peer.addr);
    let outcome = probe(
        ctx(
            &["bind:127.0.0.1", &format!("connect,send:{}", peer.addr)],
            &[],
        ),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            &connect,
            "send - late",
            "unconnect",
            "recv 5000",
        ]),
    );
    assert_eq!(
        result(&outcome, "recv 5000"),
        format!("from {}: echo:late", peer.addr)
    );
}

#[test]
fn replies_are_remembered_for_a_bounded_number_of_peers() {
    let first = Peer::spawn();
    let second = Peer::spawn();
    let mut udp = UdpCtx::builder();
    udp.allow("bind:127.0.0.1".parse().expect("rule"))
        .allow("send:127.0.0.2".parse().expect("rule"))
        .max_reply_peers(1);
    let send_first = format!("send {} one", first.addr);
    let send_second = format!("send {} two", second.addr);
    let outcome = probe(
        udp.build(),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            "unconnect",
            &send_first,
            // Forgets the first peer.
            &send_second,
            "recv 5000",
            "recv 300",
        ]),
    );
    // Whichever reply comes first, only the second peer's is admitted.
    assert_eq!(
        result(&outcome, "recv 5000"),
        format!("from {}: echo:two", second.addr)
    );
    assert_eq!(result(&outcome, "recv 300"), "nothing");
    assert!(outcome.stats.dropped_not_admitted >= 1, "{outcome:?}");
}

#[test]
fn a_guest_looping_on_a_refused_send_is_counted_every_time() {
    let outcome = probe(
        ctx(&["bind:127.0.0.1"], &[]),
        &commands(&[
            "socket 4",
            "bind 127.0.0.1:0",
            "unconnect",
            "send-many 1000 127.0.0.9:9 x",
        ]),
    );
    assert_eq!(
        result(&outcome, "send-many 1000 127.0.0.9:9 x"),
        "1000x error access-denied"
    );
    assert_eq!(outcome.stats.denied, 1000);
}

#[test]
fn binding_follows_the_rules_and_the_loopback_base() {
    let mut builder = UdpCtx::builder();
    builder.allow_loopback();
    let outcome = probe(
        builder.build(),
        &commands(&[
            "socket 4",
            "bind 0.0.0.0:999",
            "bind 0.0.0.0:5353",
            "bind 127.0.0.1:53",
            "bind 0.0.0.0:0",
            "socket 6",
            "bind [::]:999",
            "bind [::]:0",
            "socket 4",
            "bind 127.0.0.1:0",
        ]),
    );
    for refused in [
        "bind 0.0.0.0:999",
        "bind 0.0.0.0:5353",
        "bind 127.0.0.1:53",
        "bind [::]:999",
    ] {
        assert_eq!(
            result(&outcome, refused),
            "error access-denied",
            "{refused}"
        );
    }
    for allowed in ["bind 0.0.0.0:0", "bind [::]:0", "bind 127.0.0.1:0"] {
        assert_eq!(result(&outcome, allowed), "ok", "{allowed}");
    }
    assert_eq!(outcome.stats.denied, 4, "{outcome:?}");
}
