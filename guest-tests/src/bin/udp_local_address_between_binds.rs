//! local-address between start-bind and finish-bind is invalid-state: the
//! bind is not finished ("WASI is stricter and requires local-address to
//! return invalid-state when the socket hasn't been bound yet").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        expect_error(socket.local_address(), ErrorCode::InvalidState);
        socket.finish_bind().expect("finish-bind");
        socket.local_address().expect("bound now");
    }
}
