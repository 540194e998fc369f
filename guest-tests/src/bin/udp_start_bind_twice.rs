//! start-bind while a bind is in progress fails (the WIT lists no code for
//! this; concurrency-conflict is network.wit's "This operation is incompatible
//! with another asynchronous operation that is already in progress"), and the
//! first bind still finishes.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        expect_error(
            socket.start_bind(&network(), loopback(family, 0)),
            ErrorCode::ConcurrencyConflict,
        );
        socket.finish_bind().expect("the first bind finishes");
        assert_ne!(port(&socket.local_address().expect("local-address")), 0);
    }
}
