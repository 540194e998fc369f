//! unicast-hop-limit and the buffer sizes: readable, settable, 0 is
//! invalid-argument; on unbound and bound sockets of both families.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        for bound in [false, true] {
            if bound {
                bind(&socket, loopback(family, 0)).expect("bind");
            }
            assert!(socket.unicast_hop_limit().expect("hop limit") >= 1);
            socket.set_unicast_hop_limit(42).expect("set hop limit");
            assert_eq!(socket.unicast_hop_limit().expect("hop limit"), 42);
            expect_error(socket.set_unicast_hop_limit(0), ErrorCode::InvalidArgument);
            assert_eq!(
                socket.unicast_hop_limit().expect("hop limit"),
                42,
                "unchanged by 0"
            );

            assert!(socket.receive_buffer_size().expect("rcvbuf") > 0);
            socket
                .set_receive_buffer_size(64 * 1024)
                .expect("set rcvbuf");
            assert!(socket.receive_buffer_size().expect("rcvbuf") >= 32 * 1024);
            expect_error(
                socket.set_receive_buffer_size(0),
                ErrorCode::InvalidArgument,
            );
            // "Any other value will never cause an error, but it might be
            // silently clamped and/or rounded."
            socket
                .set_receive_buffer_size(u64::MAX)
                .expect("huge rcvbuf is clamped");

            assert!(socket.send_buffer_size().expect("sndbuf") > 0);
            socket.set_send_buffer_size(64 * 1024).expect("set sndbuf");
            assert!(socket.send_buffer_size().expect("sndbuf") >= 32 * 1024);
            expect_error(socket.set_send_buffer_size(0), ErrorCode::InvalidArgument);
            socket
                .set_send_buffer_size(u64::MAX)
                .expect("huge sndbuf is clamped");
        }
    }
}
