//! set-unicast-hop-limit(0) is invalid-argument ("The TTL value must be 1 or
//! higher") and leaves the value unchanged; 1 and 255 are accepted.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        socket.set_unicast_hop_limit(7).expect("set 7");
        expect_error(socket.set_unicast_hop_limit(0), ErrorCode::InvalidArgument);
        assert_eq!(socket.unicast_hop_limit().expect("get"), 7);
        for value in [1, 255] {
            socket.set_unicast_hop_limit(value).expect("set");
            assert_eq!(socket.unicast_hop_limit().expect("get"), value);
        }
    }
}
