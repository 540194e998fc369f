//! Benchmark workload: what single host calls cost, each timed over
//! ITERATIONS calls in a row (arguments: ITERATIONS, and optionally the one
//! NAME to time, for profiling). Prints one line of `name ns_per_call`
//! pairs:
//! - `clock`: `monotonic-clock.now`, a call with no resource and no list;
//! - `check-send`: on a connected stream, a call with one borrowed resource;
//! - `empty-receive`: `receive(1)` with nothing queued, a call that asks the
//!   network and lowers an empty list;
//! - `leg`: `check-send`, `send` of one 64-byte datagram and the `receive`
//!   that takes it on the other socket: one leg of the ping-pong.
use guest_tests::*;

fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ITERATIONS"))
        .unwrap_or(100_000)
        .max(1);
    let (a, a_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (b, b_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (_a_in, a_out) = a.stream(Some(b_addr)).expect("stream a");
    let (b_in, _b_out) = b.stream(Some(a_addr)).expect("stream b");
    let b_ready = b_in.subscribe();
    let a_writable = a_out.subscribe();
    let ping = [OutgoingDatagram {
        data: vec![1; 64],
        remote_address: None,
    }];
    let only = std::env::args().nth(2);
    let per_call = |name: &str, f: &mut dyn FnMut()| {
        if only.as_deref().is_some_and(|only| only != name) {
            return f64::NAN;
        }
        let start = monotonic_clock::now();
        for _ in 0..iterations {
            f();
        }
        (monotonic_clock::now() - start) as f64 / iterations as f64
    };
    let clock = per_call("clock", &mut || {
        std::hint::black_box(monotonic_clock::now());
    });
    let check_send = per_call("check-send", &mut || {
        std::hint::black_box(a_out.check_send().expect("check-send"));
    });
    let empty_receive = per_call("empty-receive", &mut || {
        assert!(b_in.receive(1).expect("receive").is_empty());
    });
    let leg = per_call("leg", &mut || {
        while a_out.check_send().expect("check-send") == 0 {
            wait(&a_writable);
        }
        assert_eq!(a_out.send(&ping).expect("send"), 1);
        // On loopback the datagram is queued when `send` returns; on other
        // networks it may take a wait.
        while b_in.receive(1).expect("receive").is_empty() {
            wait(&b_ready);
        }
    });
    println!(
        "clock {clock:.1} check-send {check_send:.1} empty-receive {empty_receive:.1} leg {leg:.1}"
    );
}
