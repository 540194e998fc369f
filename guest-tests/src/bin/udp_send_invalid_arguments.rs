//! send's invalid-argument cases: connected with another address,
//! unconnected without one, unspecified IP, port 0, wrong family, IPv4-mapped
//! on IPv6. And "if at least one datagram has been sent successfully, this
//! function never returns an error": a valid datagram followed by an
//! invalid one sends 1.
use guest_tests::*;

fn one(data: &[u8], to: Option<IpSocketAddress>) -> OutgoingDatagram {
    OutgoingDatagram {
        data: data.to_vec(),
        remote_address: to,
    }
}

fn send(stream: &OutgoingDatagramStream, datagrams: &[OutgoingDatagram]) -> Result<u64, ErrorCode> {
    let permitted = stream.check_send().expect("check-send");
    assert!(permitted >= datagrams.len() as u64, "permit {permitted}");
    stream.send(datagrams)
}

fn main() {
    for family in FAMILIES {
        let other = match family {
            IpAddressFamily::Ipv4 => IpAddressFamily::Ipv6,
            IpAddressFamily::Ipv6 => IpAddressFamily::Ipv4,
        };
        let (socket, _) = bound_socket(family);
        let (peer_in_socket, peer) = bound_socket(family);
        let (peer_in, _peer_out) = peer_in_socket.stream(None).expect("stream peer");
        let (_in, out) = socket.stream(None).expect("stream");

        let mut invalid = vec![
            None,
            Some(unspecified(family, port(&peer))),
            Some(loopback(family, 0)),
            Some(loopback(other, port(&peer))),
        ];
        if family == IpAddressFamily::Ipv6 {
            invalid.push(Some(ipv4_mapped_loopback(port(&peer))));
        }
        for to in &invalid {
            expect_error(send(&out, &[one(b"x", *to)]), ErrorCode::InvalidArgument);
        }
        // A valid datagram first: it is sent, and the call succeeds with 1.
        for to in &invalid {
            let sent = send(&out, &[one(b"valid", Some(peer)), one(b"x", *to)]).expect("send");
            assert_eq!(sent, 1, "only the valid prefix is sent");
        }
        let received = receive_exactly(&peer_in, invalid.len());
        assert!(received.iter().all(|d| d.data == b"valid"));
        drop((_in, out));

        // Connected: another address is invalid-argument.
        let (_in, out) = socket.stream(Some(peer)).expect("connect");
        let (_, elsewhere) = bound_socket(family);
        expect_error(
            send(&out, &[one(b"x", Some(elsewhere))]),
            ErrorCode::InvalidArgument,
        );
        assert_eq!(send(&out, &[one(b"ok", None)]).expect("send to peer"), 1);
    }
}
