//! `dns_lookup SERVER[:PORT] NAME...`: asks SERVER for the A and AAAA
//! records of each NAME, over UDP, with hickory-proto building and parsing
//! the messages, and prints what it learns:
//!
//! ```text
//! printer.lan A 10.53.0.20
//! printer.lan AAAA fd53::20
//! nowhere.lan NXDOMAIN
//! elsewhere.example REFUSED
//! ```
//!
//! Exits 1 if the server never answers.
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use example_guests::recv_within;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

fn server_address(text: &str) -> SocketAddr {
    text.parse()
        .or_else(|_| format!("{text}:53").parse())
        .unwrap_or_else(|_| panic!("`{text}` is not an address"))
}

/// The code as DNS tools print it (`dig`'s `status:`).
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

fn lookup(socket: &UdpSocket, id: u16, name: &Name, kind: RecordType) -> Result<(), String> {
    let mut query = Message::new();
    query
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name.clone(), kind));
    let bytes = query.to_bytes().map_err(|e| format!("encode: {e}"))?;
    let mut buffer = [0u8; 4096];
    // Three tries, one second each, as resolvers do.
    for _ in 0..3 {
        socket.send(&bytes).map_err(|e| format!("send: {e}"))?;
        let Some(len) = recv_within(socket, &mut buffer, Duration::from_secs(1))
            .map_err(|e| format!("receive: {e}"))?
        else {
            continue;
        };
        let answer = Message::from_bytes(&buffer[..len]).map_err(|e| format!("decode: {e}"))?;
        if answer.id() != id {
            continue;
        }
        if answer.response_code() != ResponseCode::NoError {
            // Once per name, not once per record type.
            if kind == RecordType::A {
                println!("{name} {}", rcode_name(answer.response_code()));
            }
            return Ok(());
        }
        for record in answer.answers() {
            match record.data() {
                RData::A(a) => println!("{name} A {a}"),
                RData::AAAA(aaaa) => println!("{name} AAAA {aaaa}"),
                _ => {}
            }
        }
        return Ok(());
    }
    Err(format!("no answer from the server for {name} {kind}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((server, names)) = args.split_first() else {
        eprintln!("usage: dns_lookup SERVER[:PORT] NAME...");
        return ExitCode::from(2);
    };
    let server = server_address(server);
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).expect("bind");
    socket.connect(server).expect("connect to the server");
    socket.set_nonblocking(true).expect("non-blocking");
    let mut id = 0x5eed_u16;
    for name in names {
        let name = Name::from_str(name).expect("a DNS name");
        for kind in [RecordType::A, RecordType::AAAA] {
            id = id.wrapping_add(1);
            if let Err(error) = lookup(&socket, id, &name, kind) {
                eprintln!("dns_lookup: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
