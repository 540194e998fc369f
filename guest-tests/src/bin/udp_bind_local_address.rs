//! `start-bind`/`finish-bind` and `local-address`: invalid-state before the
//! bind, the bound address after, for IPv4 and IPv6, on port 0, an explicit
//! port and the wildcard address. (Between start and finish:
//! udp_local_address_between_binds.)
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = socket(family);
        expect_error(socket.local_address(), ErrorCode::InvalidState);
        socket
            .start_bind(&network(), loopback(family, 0))
            .expect("start-bind");
        wait(&socket.subscribe());
        socket.finish_bind().expect("finish-bind");
        let bound = socket.local_address().expect("local-address");
        assert_ne!(port(&bound), 0);
        assert!(same(&bound, &loopback(family, port(&bound))), "{bound:?}");

        // A second socket on an explicit port, the one just freed.
        let chosen = port(&bound);
        drop(socket);
        let again = self::socket(family);
        bind(&again, loopback(family, chosen)).expect("bind to an explicit port");
        assert!(same(
            &again.local_address().expect("local-address"),
            &loopback(family, chosen)
        ));

        // The wildcard address.
        let wildcard = self::socket(family);
        bind(&wildcard, unspecified(family, 0)).expect("bind to the wildcard");
        let addr = wildcard.local_address().expect("local-address");
        assert!(same(&addr, &unspecified(family, port(&addr))), "{addr:?}");
    }
}
