//! A udp-socket's own pollable may outlive the socket: dropping the socket
//! first does not trap, and the pollable can still be polled and dropped.
use guest_tests::*;

fn main() {
    for family in FAMILIES {
        let (socket, _) = bound_socket(family);
        let pollable = socket.subscribe();
        println!("about to drop a socket before its pollable");
        drop(socket);
        wait(&pollable);
        drop(pollable);
    }
}
