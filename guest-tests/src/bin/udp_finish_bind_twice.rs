//! A second finish-bind is not-in-progress ("was already finished by a
//! previous finish-* call"); start-bind on the bound socket is invalid-state
//! ("The socket is already bound").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        expect_error(socket.finish_bind(), ErrorCode::NotInProgress);
        expect_error(
            socket.start_bind(&network(), loopback(family, 0)),
            ErrorCode::InvalidState,
        );
    }
}
