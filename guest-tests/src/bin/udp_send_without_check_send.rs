//! send without any check-send traps ("Implementations must trap if either
//! check-send was not called or ...").
use guest_tests::*;

fn main() {
    let (socket, addr) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, out) = socket.stream(None).expect("stream");
    println!("about to send");
    let _ = out.send(&[OutgoingDatagram {
        data: b"x".to_vec(),
        remote_address: Some(addr),
    }]);
    // Reaching this line means the host did not trap: fail without one.
    eprintln!("send returned: the host should have trapped");
    std::process::exit(1);
}
