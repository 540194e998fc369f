//! stream() while the previous streams are alive traps (the WIT allows it:
//! "Implementations may trap if the streams returned by a previous invocation
//! haven't been dropped yet").
use guest_tests::*;

fn main() {
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, _outgoing) = socket.stream(None).expect("stream");
    drop(incoming);
    println!("about to stream again with the outgoing stream alive");
    let _ = socket.stream(None);
    // Reaching this line means the host did not trap: fail without one.
    eprintln!("stream returned: the host should have trapped");
    std::process::exit(1);
}
