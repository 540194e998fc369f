//! Unconnected exchange between two sockets, IPv4 and IPv6: payloads arrive
//! intact and in order, with the sender's address as remote-address.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (a, a_addr) = bound_socket(family);
        let (b, b_addr) = bound_socket(family);
        let (a_in, a_out) = a.stream(None).expect("stream a");
        let (b_in, b_out) = b.stream(None).expect("stream b");

        let datagrams: Vec<OutgoingDatagram> = (0..20u8)
            .map(|i| OutgoingDatagram {
                data: vec![i; usize::from(i) * 7],
                remote_address: Some(b_addr),
            })
            .collect();
        send_all(&a_out, &datagrams);
        let received = receive_exactly(&b_in, datagrams.len());
        for (i, datagram) in received.iter().enumerate() {
            assert_eq!(datagram.data, datagrams[i].data, "datagram {i}");
            assert!(
                same(&datagram.remote_address, &a_addr),
                "source of datagram {i}"
            );
        }

        send_one(&b_out, b"reply", Some(a_addr));
        let reply = receive_exactly(&a_in, 1);
        assert_eq!(reply[0].data, b"reply");
        assert!(same(&reply[0].remote_address, &b_addr));
    }
}
