//! Benchmark workload: COUNT sockets in this guest, each bound to loopback
//! with live streams. With EXCHANGE 1, socket i sends one 64-byte datagram
//! to socket i+1 (a ring) and every socket then receives its one datagram;
//! with EXCHANGE 0 the sockets stay idle. Arguments: COUNT EXCHANGE.
//! Prints `sockets N received R elapsed_ns T`.
use guest_tests::*;

/// Fields drop in order: the streams before their socket, which every host
/// accepts.
struct Endpoint {
    incoming: IncomingDatagramStream,
    outgoing: OutgoingDatagramStream,
    _socket: UdpSocket,
    address: IpSocketAddress,
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let [count, exchange] = args[..] else {
        panic!("usage: bench_many_sockets COUNT EXCHANGE")
    };
    let start = monotonic_clock::now();
    let endpoints: Vec<Endpoint> = (0..count)
        .map(|_| {
            let (socket, address) = bound_socket(IpAddressFamily::Ipv4);
            let (incoming, outgoing) = socket.stream(None).expect("stream");
            Endpoint {
                incoming,
                outgoing,
                _socket: socket,
                address,
            }
        })
        .collect();
    let mut received = 0;
    if exchange == 1 && count > 0 {
        for (i, endpoint) in endpoints.iter().enumerate() {
            let next = &endpoints[(i + 1) % endpoints.len()];
            send_one(&endpoint.outgoing, &[i as u8; 64], Some(next.address));
        }
        for endpoint in &endpoints {
            received += receive_exactly(&endpoint.incoming, 1).len();
        }
    }
    println!(
        "sockets {} received {received} elapsed_ns {}",
        endpoints.len(),
        monotonic_clock::now() - start
    );
}
