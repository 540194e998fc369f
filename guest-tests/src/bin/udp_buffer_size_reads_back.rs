//! A buffer size the guest sets reads back as itself (Linux doubles what
//! it is given for its own bookkeeping; the guest never sees that), for
//! both buffers and both families.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        for size in [65_536, 100_000, 8_192] {
            socket
                .set_receive_buffer_size(size)
                .expect("set-receive-buffer-size");
            assert_eq!(
                socket.receive_buffer_size().expect("receive-buffer-size"),
                size,
                "{family:?} receive buffer"
            );
            socket
                .set_send_buffer_size(size)
                .expect("set-send-buffer-size");
            assert_eq!(
                socket.send_buffer_size().expect("send-buffer-size"),
                size,
                "{family:?} send buffer"
            );
        }
    }
}
