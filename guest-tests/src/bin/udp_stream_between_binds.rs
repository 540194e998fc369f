//! stream() between start-bind and finish-bind is invalid-state ("Unlike in
//! POSIX, the socket must already be explicitly bound"; the bind is not
//! finished).
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        expect_error(socket.stream(None).map(|_| ()), ErrorCode::InvalidState);
        socket.finish_bind().expect("finish-bind");
        drop(socket.stream(None).expect("stream once bound"));
    }
}
