//! A connected send of two datagrams to a closed port succeeds ("If at least
//! one datagram has been sent successfully, this function never returns an
//! error"), and the ICMP report it causes is still reported, once, by a later
//! receive, whether it came back during the batch or after it.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (closed_socket, closed) = bound_socket(family);
        drop(closed_socket);
        let (socket, _) = bound_socket(family);
        let (incoming, outgoing) = socket.stream(Some(closed)).expect("connect");
        assert!(outgoing.check_send().expect("check-send") >= 2);
        let datagram = OutgoingDatagram {
            data: b"anyone?".to_vec(),
            remote_address: None,
        };
        let sent = outgoing
            .send(&[datagram.clone(), datagram])
            .expect("a batch whose first datagram went out is not an error");
        assert!(sent >= 1, "sent {sent}");
        expect_error(
            receive_next(&incoming, 8).map(|_| ()),
            ErrorCode::ConnectionRefused,
        );
        assert!(incoming.receive(8).expect("reported once").is_empty());
    }
}
