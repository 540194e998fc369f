//! set-receive-buffer-size(0) and set-send-buffer-size(0) are
//! invalid-argument ("If the provided value is 0, an invalid-argument error is
//! returned"); other values are accepted, possibly clamped.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        expect_error(
            socket.set_receive_buffer_size(0),
            ErrorCode::InvalidArgument,
        );
        expect_error(socket.set_send_buffer_size(0), ErrorCode::InvalidArgument);
        for value in [1, 4096, 1 << 20, u64::MAX] {
            socket
                .set_receive_buffer_size(value)
                .expect("receive buffer");
            socket.set_send_buffer_size(value).expect("send buffer");
            assert!(socket.receive_buffer_size().expect("get") > 0);
            assert!(socket.send_buffer_size().expect("get") > 0);
        }
    }
}
