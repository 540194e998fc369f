//! Demo: sends COUNT pings to the echo server at ADDRESS (arguments:
//! `127.0.0.1:PORT COUNT`) and prints each echo with its round-trip time.
use guest_tests::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (server, count) = match &args[1..] {
        [server, count] => (parse_v4(server), count.parse::<u32>().expect("COUNT")),
        _ => {
            eprintln!("usage: demo_client 127.0.0.1:PORT COUNT");
            std::process::exit(1);
        }
    };
    let (socket, local) = bound_socket(IpAddressFamily::Ipv4);
    println!(
        "bound to port {}, talking to port {}",
        port(&local),
        port(&server)
    );
    let (incoming, outgoing) = socket.stream(Some(server)).expect("connect to the server");
    for i in 1..=count {
        let message = format!("ping {i}");
        let start = monotonic_clock::now();
        send_one(&outgoing, message.as_bytes(), None);
        let echo = receive_exactly(&incoming, 1).remove(0);
        let micros = (monotonic_clock::now() - start) / 1000;
        assert_eq!(echo.data, message.as_bytes(), "echo differs");
        println!("sent {message:?}, echo came back in {micros} µs");
    }
}

fn parse_v4(text: &str) -> IpSocketAddress {
    let (ip, port) = text.split_once(':').expect("ADDRESS is IP:PORT");
    let octets: Vec<u8> = ip
        .split('.')
        .map(|o| o.parse().expect("IPv4 octet"))
        .collect();
    let [a, b, c, d] = octets[..] else {
        panic!("ADDRESS must be IPv4")
    };
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: port.parse().expect("PORT"),
        address: (a, b, c, d),
    })
}
