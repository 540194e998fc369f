//! With the host's socket limit reached, create-udp-socket is
//! new-socket-limit; dropping a socket frees its slot. (The host test runs
//! this guest with a limit of 8.)
use guest_tests::*;

fn main() {
    let mut sockets = Vec::new();
    loop {
        match create_udp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => sockets.push(socket),
            Err(code) => {
                assert_eq!(code, ErrorCode::NewSocketLimit);
                break;
            }
        }
        assert!(sockets.len() <= 1000, "no limit reached");
    }
    println!("limit reached at {} sockets", sockets.len());
    sockets.pop();
    let socket = create_udp_socket(IpAddressFamily::Ipv4).expect("a slot was freed");
    // Streams keep the slot of a dropped socket until they go too.
    bind(&socket, loopback(IpAddressFamily::Ipv4, 0)).expect("bind");
    let streams = socket.stream(None).expect("stream");
    drop(socket);
    expect_error(
        create_udp_socket(IpAddressFamily::Ipv4).map(|_| ()),
        ErrorCode::NewSocketLimit,
    );
    drop(streams);
    create_udp_socket(IpAddressFamily::Ipv4).expect("slot freed with the streams");
}
