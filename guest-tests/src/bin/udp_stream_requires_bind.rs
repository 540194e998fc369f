//! stream() on an unbound socket is invalid-state ("Unlike in POSIX, the
//! socket must already be explicitly bound"). (Between start-bind and
//! finish-bind: udp_stream_between_binds.)
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        expect_error(socket.stream(None).map(|_| ()), ErrorCode::InvalidState);
        expect_error(
            socket.stream(Some(loopback(family, 9))).map(|_| ()),
            ErrorCode::InvalidState,
        );
        bind(&socket, loopback(family, 0)).expect("bind");
        let streams = socket.stream(None).expect("stream after bind");
        drop(streams);
    }
}
