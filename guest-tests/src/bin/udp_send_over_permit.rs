//! send with more datagrams than check-send permitted traps.
use guest_tests::*;

fn main() {
    let (socket, addr) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, out) = socket.stream(None).expect("stream");
    let permitted = out.check_send().expect("check-send");
    assert!(permitted >= 1);
    let datagrams: Vec<_> = (0..=permitted)
        .map(|_| OutgoingDatagram {
            data: b"x".to_vec(),
            remote_address: Some(addr),
        })
        .collect();
    println!(
        "about to send {} with a permit of {permitted}",
        datagrams.len()
    );
    let _ = out.send(&datagrams);
    // Reaching this line means the host did not trap: fail without one.
    eprintln!("send returned: the host should have trapped");
    std::process::exit(1);
}
