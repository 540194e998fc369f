//! Paths of the conformance guests in `guest-tests/`, compiled for
//! `wasm32-wasip2` by this crate's build script.
//!
//! Each guest `guest-tests/src/bin/NAME.rs` becomes a constant `NAME` (upper
//! case) holding the path of its component, an entry in [`ALL`], and a call
//! `$mac!(NAME)` in [`foreach_guest!`], which host test files use to insist
//! that every guest has a test.

#![forbid(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
