//! finish-bind with no bind started is not-in-progress ("Trying to finish an
//! asynchronous operation that has not been started yet").
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        expect_error(socket(family).finish_bind(), ErrorCode::NotInProgress);
    }
}
