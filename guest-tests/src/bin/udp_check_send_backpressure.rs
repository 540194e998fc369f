//! Under backpressure check-send returns ok(0), and the outgoing pollable
//! becomes ready when check-send permits again ("When this function returns
//! ok(0), the subscribe pollable will become ready when this function will
//! report at least ok(1), or an error").
//!
//! Needs a host whose loopback queues datagrams (plain loopback hands each
//! one over within the send): the conformance runner's --shaped-loopback,
//! which the suite's own test provides with a rate-limited qdisc in a private
//! network namespace.
use guest_tests::*;

fn main() {
    let (rx, rx_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (tx, _) = bound_socket(IpAddressFamily::Ipv4);
    tx.set_send_buffer_size(8 * 1024)
        .expect("small send buffer");
    let (_rx_in, _rx_out) = rx.stream(None).expect("stream rx");
    let (_tx_in, tx_out) = tx.stream(Some(rx_addr)).expect("stream tx");
    let pollable = tx_out.subscribe();
    let datagram = OutgoingDatagram {
        data: vec![7; 1400],
        remote_address: None,
    };

    let deadline = monotonic_clock::now() + TIMEOUT_NANOS;
    let mut sent = 0u64;
    loop {
        assert!(
            monotonic_clock::now() < deadline,
            "no backpressure after {sent} datagrams"
        );
        let permitted = tx_out.check_send().expect("check-send");
        if permitted == 0 {
            break;
        }
        sent += tx_out.send(std::slice::from_ref(&datagram)).expect("send");
    }
    println!("check-send returned 0 after {sent} datagrams");
    wait(&pollable);
    assert!(
        tx_out.check_send().expect("check-send") >= 1,
        "ready pollable, but no permit"
    );
    assert_eq!(
        tx_out.send(&[datagram]).expect("send after backpressure"),
        1
    );
}
