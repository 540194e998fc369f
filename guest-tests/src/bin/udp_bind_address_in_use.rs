//! Binding a port another socket holds is address-in-use; the failed socket
//! stays unbound and can bind elsewhere.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (_holder, taken) = bound_socket(family);
        let socket = socket(family);
        expect_error(
            socket.start_bind(&network(), taken),
            ErrorCode::AddressInUse,
        );
        expect_error(socket.finish_bind(), ErrorCode::NotInProgress);
        expect_error(socket.local_address(), ErrorCode::InvalidState);
        bind(&socket, loopback(family, 0)).expect("bind after a failed bind");
    }
}
