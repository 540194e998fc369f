//! Wrong-state bind calls: finish-bind with no bind in progress or twice is
//! not-in-progress; start-bind while one is in progress is
//! concurrency-conflict; start-bind on a bound socket is invalid-state.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        expect_error(socket.finish_bind(), ErrorCode::NotInProgress);
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        expect_error(
            socket.start_bind(&network(), loopback(family, 0)),
            ErrorCode::ConcurrencyConflict,
        );
        socket.finish_bind().expect("finish-bind");
        expect_error(socket.finish_bind(), ErrorCode::NotInProgress);
        expect_error(
            socket.start_bind(&network(), loopback(family, 0)),
            ErrorCode::InvalidState,
        );
    }
}
