//! udp-socket.subscribe: the pollable becomes ready once start-bind has
//! been called, so finish-bind then succeeds.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        let pollable = socket.subscribe();
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        wait(&pollable);
        socket.finish_bind().expect("finish-bind after readiness");
    }
}
