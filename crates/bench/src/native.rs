//! The workloads natively, in the same pattern as the guests: one process,
//! loopback. `blast` uses std's `UdpSocket` one datagram per syscall, as a
//! plain program would; `blast_mmsg` uses `sendmmsg`/`recvmmsg` batches of
//! 64; `blast_gso` sends each turn as one segmented send (UDP GSO) and
//! receives with `recvmmsg`; `blast_gro` also receives coalesced (UDP GRO),
//! many datagrams per buffer: the ceilings a host provider can aim for.

use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    sendmmsg, sendmsg, setsockopt, sockopt,
};

use crate::{BlastResult, latency_sample, rtts_summary};

/// Most datagrams per turn, as the guests' send and receive batches.
const TURN: u64 = 64;

/// Two connected, non-blocking loopback sockets with the receive buffer the
/// guests ask for.
fn blast_pair() -> (UdpSocket, UdpSocket) {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind rx");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind tx");
    tx.connect(rx.local_addr().expect("addr")).expect("connect");
    socket2::SockRef::from(&rx)
        .set_recv_buffer_size(4 << 20)
        .expect("receive buffer");
    rx.set_nonblocking(true).expect("nonblocking");
    tx.set_nonblocking(true).expect("nonblocking");
    (rx, tx)
}

/// The loop both blasts share: `send(n)` sends up to `n` and returns how
/// many went, `receive()` takes up to [`TURN`] and returns how many came.
fn blast_loop(
    count: u64,
    window: u64,
    mut send: impl FnMut(u64) -> u64,
    mut receive: impl FnMut() -> u64,
) -> BlastResult {
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
        let room = limit.saturating_sub(sent).min(TURN);
        if room > 0 {
            sent += send(room);
        }
        let got = receive();
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
    BlastResult {
        received,
        elapsed: start.elapsed(),
    }
}

fn would_block_is_zero(result: io::Result<usize>) -> u64 {
    match result {
        Ok(n) => n as u64,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(e) => panic!("native blast: {e}"),
    }
}

/// `count` datagrams of `size` bytes, at most `window` in flight (0: none),
/// one syscall per datagram.
pub fn blast(count: u64, size: usize, window: u64) -> BlastResult {
    let (rx, tx) = blast_pair();
    let payload = vec![0xab; size];
    let mut buffer = vec![0; 65536];
    blast_loop(
        count,
        window,
        |room| {
            let mut sent = 0;
            while sent < room {
                match would_block_is_zero(tx.send(&payload).map(|_| 1)) {
                    0 => break,
                    n => sent += n,
                }
            }
            sent
        },
        || {
            let mut got = 0;
            while got < TURN {
                match would_block_is_zero(rx.recv(&mut buffer).map(|_| 1)) {
                    0 => break,
                    n => got += n,
                }
            }
            got
        },
    )
}

/// The same as [`blast`], with one `sendmmsg` and one `recvmmsg` per turn.
pub fn blast_mmsg(count: u64, size: usize, window: u64) -> BlastResult {
    let (rx, tx) = blast_pair();
    let payload = vec![0xab; size];
    let payloads: Vec<[IoSlice<'_>; 1]> = (0..TURN).map(|_| [IoSlice::new(&payload)]).collect();
    let no_address: Vec<Option<SockaddrStorage>> = vec![None; TURN as usize];
    let mut storage = vec![0u8; TURN as usize * 2048];
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(TURN as usize, None);
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(TURN as usize, None);
    blast_loop(
        count,
        window,
        |room| {
            let result = sendmmsg(
                tx.as_raw_fd(),
                &mut send_headers,
                &payloads[..room as usize],
                &no_address[..room as usize],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count)
            .map_err(io::Error::from);
            would_block_is_zero(result)
        },
        || receive_batch(&rx, &mut receive_headers, &mut storage),
    )
}

/// One `recvmmsg` of up to [`TURN`] datagrams into `storage`'s 2 KiB slots;
/// how many came.
fn receive_batch(
    rx: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    storage: &mut [u8],
) -> u64 {
    let mut buffers: Vec<[IoSliceMut<'_>; 1]> = storage
        .chunks_exact_mut(2048)
        .map(|slot| [IoSliceMut::new(slot)])
        .collect();
    let result = recvmmsg(
        rx.as_raw_fd(),
        headers,
        buffers.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map(Iterator::count)
    .map_err(io::Error::from);
    would_block_is_zero(result)
}

/// Sends up to `room` datagrams of `payload` as one segmented send (UDP GSO,
/// at most [`TURN`] segments and 64 KiB per call); how many went.
fn send_segmented(tx: &UdpSocket, payload: &[u8], room: u64) -> u64 {
    let segments = room.min(TURN).min(65_507 / payload.len().max(1) as u64) as usize;
    let payloads: [IoSlice<'_>; TURN as usize] = [IoSlice::new(payload); TURN as usize];
    let segment_size = payload.len() as u16;
    let result = sendmsg::<SockaddrStorage>(
        tx.as_raw_fd(),
        &payloads[..segments],
        &[ControlMessage::UdpGsoSegments(&segment_size)],
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map(|_| segments)
    .map_err(io::Error::from);
    would_block_is_zero(result)
}

/// [`blast_mmsg`] with each turn sent as one segmented send (UDP GSO), and
/// received with `recvmmsg` as ordinary datagrams.
pub fn blast_gso(count: u64, size: usize, window: u64) -> BlastResult {
    let (rx, tx) = blast_pair();
    let payload = vec![0xab; size];
    let mut storage = vec![0u8; TURN as usize * 2048];
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(TURN as usize, None);
    blast_loop(
        count,
        window,
        |room| send_segmented(&tx, &payload, room),
        || receive_batch(&rx, &mut receive_headers, &mut storage),
    )
}

/// Buffers per `recvmmsg` when receiving coalesced: each can hold a whole
/// segmented send.
const COALESCED_BUFFERS: usize = 8;

/// [`blast_gso`] with the receiver asking for coalesced datagrams (UDP GRO):
/// one buffer carries a run of equal-sized datagrams, counted by the segment
/// size the kernel reports with it.
pub fn blast_gro(count: u64, size: usize, window: u64) -> BlastResult {
    let (rx, tx) = blast_pair();
    setsockopt(&rx, sockopt::UdpGroSegment, &true).expect("UDP_GRO");
    let payload = vec![0xab; size];
    let mut storage = vec![0u8; COALESCED_BUFFERS * 65_536];
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(
        COALESCED_BUFFERS,
        Some(nix::cmsg_space!(i32)),
    );
    blast_loop(
        count,
        window,
        |room| send_segmented(&tx, &payload, room),
        || {
            let mut buffers: Vec<[IoSliceMut<'_>; 1]> = storage
                .chunks_exact_mut(65_536)
                .map(|slot| [IoSliceMut::new(slot)])
                .collect();
            let result = recvmmsg(
                rx.as_raw_fd(),
                &mut receive_headers,
                buffers.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map(|messages| {
                messages
                    .map(|message| {
                        let segment = message
                            .cmsgs()
                            .ok()
                            .and_then(|mut cmsgs| {
                                cmsgs.find_map(|cmsg| match cmsg {
                                    ControlMessageOwned::UdpGroSegments(size) => Some(size),
                                    _ => None,
                                })
                            })
                            .map_or(message.bytes, |size| size.max(1) as usize);
                        message.bytes.div_ceil(segment).max(1)
                    })
                    .sum()
            })
            .map_err(io::Error::from);
            would_block_is_zero(result)
        },
    )
}

/// [`blast_gro`] through quinn-udp's socket layer (segmented sends,
/// coalesced `recvmmsg` receives), for comparing that crate's syscall layer
/// with the hand-written one under the same load.
pub fn blast_quinn(count: u64, size: usize, window: u64) -> BlastResult {
    use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
    let (rx, tx) = blast_pair();
    let destination = rx.local_addr().expect("addr");
    let rx_state = UdpSocketState::new((&rx).into()).expect("quinn-udp receiver");
    let tx_state = UdpSocketState::new((&tx).into()).expect("quinn-udp sender");
    let per_send = (TURN as usize)
        .min(65_507 / size.max(1))
        .min(tx_state.max_gso_segments());
    let contents = vec![0xab; per_send * size];
    let mut storage = vec![0u8; COALESCED_BUFFERS * 65_536];
    let mut meta = [RecvMeta::default(); COALESCED_BUFFERS];
    blast_loop(
        count,
        window,
        |room| {
            let segments = (room as usize).min(per_send);
            let transmit = Transmit {
                destination,
                ecn: None,
                contents: &contents[..segments * size],
                segment_size: (segments > 1).then_some(size),
                src_ip: None,
            };
            would_block_is_zero(
                tx_state
                    .try_send((&tx).into(), &transmit)
                    .map(|()| segments),
            )
        },
        || {
            let mut buffers: Vec<IoSliceMut<'_>> = storage
                .chunks_exact_mut(65_536)
                .map(IoSliceMut::new)
                .collect();
            let result = rx_state
                .recv((&rx).into(), &mut buffers, &mut meta)
                .map(|messages| {
                    meta[..messages]
                        .iter()
                        .map(|m| m.len.div_ceil(m.stride.max(1)).max(1))
                        .sum()
                });
            would_block_is_zero(result)
        },
    )
}

/// Two loopback sockets connected to each other, blocking, whose receives
/// give up after 5 s rather than hang the run.
fn blocking_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    a.connect(b.local_addr().expect("addr")).expect("connect a");
    b.connect(a.local_addr().expect("addr")).expect("connect b");
    for socket in [&a, &b] {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    (a, b)
}

/// `rounds` round trips of a 64-byte datagram between two blocking sockets;
/// (median, p99) in µs.
pub fn pingpong(rounds: usize) -> (f64, f64) {
    let (a, b) = blocking_pair();
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
    rtts_summary(latency_sample(&mut times))
}

/// What the calls workload's steps cost natively, in ns per call.
pub struct Calls {
    /// `Instant::now`.
    pub clock: f64,
    /// A `recvfrom` that finds nothing queued.
    pub empty_receive: f64,
    /// `send` of 64 bytes on one socket and the `recv` that takes it on the
    /// other.
    pub leg: f64,
}

/// The calls workload's steps, each `iterations` times in a row, between
/// two blocking sockets.
pub fn calls(iterations: u64) -> Calls {
    let iterations = iterations.max(1);
    let (a, b) = blocking_pair();
    let per_call = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        start.elapsed().as_nanos() as f64 / iterations as f64
    };
    let clock = per_call(&mut || {
        std::hint::black_box(Instant::now());
    });
    b.set_nonblocking(true).expect("non-blocking");
    let mut buffer = [0u8; 128];
    let empty_receive = per_call(&mut || {
        let result = b.recv(&mut buffer);
        assert!(
            matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{result:?}"
        );
    });
    b.set_nonblocking(false).expect("blocking");
    let ping = [1u8; 64];
    let leg = per_call(&mut || {
        a.send(&ping).expect("send");
        b.recv(&mut buffer).expect("recv");
    });
    Calls {
        clock,
        empty_receive,
        leg,
    }
}

/// `count` bound sockets; with `exchange`, each sends a 64-byte datagram to
/// the next (a ring) and each then receives one. Returns the elapsed time.
pub fn many_sockets(count: usize, exchange: bool) -> Duration {
    let start = Instant::now();
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    if exchange && count > 0 {
        let addresses: Vec<_> = sockets
            .iter()
            .map(|s| s.local_addr().expect("addr"))
            .collect();
        for (i, socket) in sockets.iter().enumerate() {
            socket
                .send_to(&[i as u8; 64], addresses[(i + 1) % count])
                .expect("send");
        }
        let mut buffer = [0u8; 128];
        for socket in &sockets {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            socket.recv(&mut buffer).expect("receive");
        }
    }
    start.elapsed()
}
