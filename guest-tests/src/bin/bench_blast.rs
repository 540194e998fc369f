//! Benchmark workload: COUNT datagrams of SIZE bytes from one socket to
//! another in this guest, through check-send/send batches and receive
//! batches, keeping at most WINDOW datagrams in flight (0: no window).
//! Arguments: COUNT SIZE WINDOW. Prints `received R elapsed_ns T`.
use guest_tests::*;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let [count, size, window] = args[..] else {
        panic!("usage: bench_blast COUNT SIZE WINDOW")
    };
    let (rx, rx_addr) = bound_socket(IpAddressFamily::Ipv4);
    rx.set_receive_buffer_size(4 << 20).expect("receive buffer");
    let (tx, _) = bound_socket(IpAddressFamily::Ipv4);
    let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
    let (_tx_in, tx_out) = tx.stream(Some(rx_addr)).expect("stream tx");
    let rx_ready = rx_in.subscribe();
    let tx_ready = tx_out.subscribe();
    let payload = OutgoingDatagram {
        data: vec![0xab; size as usize],
        remote_address: None,
    };
    let batch: Vec<OutgoingDatagram> = (0..64).map(|_| payload.clone()).collect();

    let start = monotonic_clock::now();
    let deadline = start + 60 * 1_000_000_000;
    let (mut sent, mut received) = (0u64, 0u64);
    while received < count && monotonic_clock::now() < deadline {
        let in_flight = sent - received;
        let room = if window == 0 {
            count - sent
        } else {
            (window.saturating_sub(in_flight)).min(count - sent)
        };
        if room > 0 {
            let permitted = tx_out.check_send().expect("check-send");
            let n = room.min(permitted).min(64) as usize;
            if n > 0 {
                sent += tx_out.send(&batch[..n]).expect("send");
            }
        }
        let got = rx_in.receive(64).expect("receive").len() as u64;
        received += got;
        if got == 0 {
            if sent == count || (window != 0 && sent - received >= window) {
                // Unwindowed loss shows up as datagrams that never come: stop
                // once nothing arrives for 100 ms after the last send.
                if !wait_at_most(&rx_ready, 100_000_000) {
                    break;
                }
            } else if room > 0 {
                let _ = wait_at_most(&tx_ready, 1_000_000);
            }
        }
    }
    println!(
        "received {received} elapsed_ns {}",
        monotonic_clock::now() - start
    );
}
