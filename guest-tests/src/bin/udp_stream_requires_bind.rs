//! stream() on an unbound socket, or between start-bind and finish-bind, is
//! invalid-state ("Unlike in POSIX, the socket must already be explicitly
//! bound").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        expect_error(socket.stream(None).map(|_| ()), ErrorCode::InvalidState);
        expect_error(
            socket.stream(Some(loopback(family, 9))).map(|_| ()),
            ErrorCode::InvalidState,
        );
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        expect_error(socket.stream(None).map(|_| ()), ErrorCode::InvalidState);
        socket.finish_bind().expect("finish-bind");
        let streams = socket.stream(None).expect("stream after bind");
        drop(streams);
    }
}
