//! stream() while the previous streams are alive: the WIT lets the host trap
//! ("Implementations may trap if the streams returned by a previous
//! invocation haven't been dropped yet"). A host that does not trap passes
//! too; this provider traps, which its own test checks.
use guest_tests::*;

fn main() {
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, _outgoing) = socket.stream(None).expect("stream");
    drop(incoming);
    println!("about to stream again with the outgoing stream alive");
    let _ = socket.stream(None);
    println!("stream returned without a trap");
}
