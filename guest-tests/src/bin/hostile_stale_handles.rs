//! Hostile: calls a method with a handle that is not what it claims to be,
//! chosen by KIND: `dropped` (a socket's handle after dropping it),
//! `foreign` (a pollable's handle passed as a socket), `made-up` (a number
//! never handed out). The call must trap; the host must not panic. Prints
//! `calling` just before.
use guest_tests::*;

fn main() {
    let kind = std::env::args().nth(1).expect("argument: KIND");
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    let handle = match kind.as_str() {
        "dropped" => {
            let handle = socket.take_handle();
            // Drop it through a fresh wrapper, keeping the number.
            drop(unsafe { UdpSocket::from_handle(handle) });
            handle
        }
        "foreign" => socket.subscribe().take_handle(),
        "made-up" => 0x7fff_fff0,
        other => panic!("unknown KIND {other}"),
    };
    println!("calling");
    let forged = unsafe { UdpSocket::from_handle(handle) };
    let result = forged.local_address();
    println!("the host accepted a {kind} handle: {result:?}");
    std::process::exit(1);
}
