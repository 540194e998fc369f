//! send([]) follows the permit rule like any other send: without check-send
//! it traps ("Each call to send must be permitted by a preceding check-send").
use guest_tests::*;

fn main() {
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, out) = socket.stream(None).expect("stream");
    println!("about to send nothing without a permit");
    let _ = out.send(&[]);
    // Reaching this line means the host did not trap: fail without one.
    eprintln!("send returned: the host should have trapped");
    std::process::exit(1);
}
