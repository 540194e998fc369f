//! `create-udp-socket` for each family; `address-family` reports it.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let socket = create_udp_socket(family).expect("create-udp-socket");
        assert_eq!(socket.address_family(), family);
        bind(&socket, loopback(family, 0)).expect("bind");
        assert_eq!(socket.address_family(), family, "unchanged by bind");
    }
}
