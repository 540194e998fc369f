//! Datagram sizes 0, 1, 1472 and the largest each family allows (65507 over
//! IPv4, 65527 over IPv6) arrive intact; one byte more is datagram-too-large.
use guest_tests::*;

fn main() {
    for (family, max) in [
        (IpAddressFamily::Ipv4, 65_507usize),
        (IpAddressFamily::Ipv6, 65_527),
    ] {
        let (rx, rx_addr) = bound_socket(family);
        rx.set_receive_buffer_size(1 << 20).expect("receive buffer");
        let (rx_in, _rx_out) = rx.stream(None).expect("stream rx");
        let (tx, _) = bound_socket(family);
        let (_tx_in, tx_out) = tx.stream(None).expect("stream tx");

        for size in [0, 1, 1472, max] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            send_one(&tx_out, &data, Some(rx_addr));
            let got = receive_exactly(&rx_in, 1);
            assert_eq!(got[0].data.len(), size);
            assert!(got[0].data == data, "payload of {size} bytes differs");
        }

        assert!(tx_out.check_send().expect("check-send") >= 1);
        let too_large = OutgoingDatagram {
            data: vec![0; max + 1],
            remote_address: Some(rx_addr),
        };
        expect_error(tx_out.send(&[too_large]), ErrorCode::DatagramTooLarge);
    }
}
