//! A permit is spent by the send it permits: a second send without a new
//! check-send traps.
use guest_tests::*;

fn main() {
    let (socket, addr) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, out) = socket.stream(None).expect("stream");
    let permitted = out.check_send().expect("check-send");
    assert!(permitted >= 2);
    let one = || {
        vec![OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(addr),
        }]
    };
    assert_eq!(out.send(&one()).expect("first send"), 1);
    println!("about to reuse the permit");
    let _ = out.send(&one());
    // Reaching this line means the host did not trap: fail without one.
    eprintln!("send returned: the host should have trapped");
    std::process::exit(1);
}
