//! Multicast DNS (RFC 6762) over `wasi-udp:extensions`: answers for a
//! `.local` name, or asks for one.
//!
//! ```text
//! mdns respond NAME.local ADDRESS [SECONDS]   answer A queries for NAME.local
//! mdns resolve NAME.local [SECONDS]           ask 224.0.0.251:5353, print the address
//! ```
//!
//! The responder shares port 5353 (so it runs beside avahi or another
//! responder), joins 224.0.0.251 and answers each query for its name: to
//! the group when the query came from port 5353, straight to the asker
//! when it came from another port (a "one-shot" query, RFC 6762 §5.1).
//! The resolver sends one-shot queries from a port of its own, once a
//! second, and prints the first answer. Both give up after SECONDS
//! (default 10).
//!
//! Policy (wasi-udp's flags), with the responder at 10.99.0.1:
//! - responder: `--allow share,bind:0.0.0.0:5353 --allow join:224.0.0.251
//!   --allow send:224.0.0.251:5353 --allow receive,send:10.99.0.0/24`;
//! - resolver: `--allow join:224.0.0.251 --allow send:224.0.0.251:5353
//!   --allow receive:10.99.0.0/24`
//!   (answers come from the responder's own address, not the group's).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use wasi_udp_ext::Datagrams;
use wasi_udp_ext::wasi::sockets::network::IpAddressFamily;
use wasi_udp_ext::wasi::sockets::udp_create_socket::create_udp_socket;

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const PORT: u16 = 5353;

/// `text` as a fully qualified name: names on the wire always are.
fn fqdn(text: &str) -> Name {
    let mut name = Name::from_str(text).expect("a DNS name");
    name.set_fqdn(true);
    name
}

fn seconds(arg: Option<&String>) -> Duration {
    Duration::from_secs(arg.map_or(10, |s| s.parse().expect("SECONDS is a number")))
}

fn respond(name: &Name, address: Ipv4Addr, run_for: Duration) -> Result<(), String> {
    let socket = create_udp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("socket: {e}"))?;
    wasi_udp_ext::set_shared_port(&socket, true).map_err(|e| format!("share port {PORT}: {e}"))?;
    let datagrams = Datagrams::bind(socket, SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)))
        .map_err(|e| format!("bind port {PORT}: {e}"))?;
    wasi_udp_ext::join_multicast_v4(&datagrams.socket, GROUP, 0)
        .map_err(|e| format!("join {GROUP}: {e}"))?;
    println!("responding for {name} with {address}");
    let deadline = Instant::now() + run_for;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some((bytes, asker)) = datagrams
            .receive(left)
            .map_err(|e| format!("receive: {e}"))?
        else {
            break;
        };
        let Ok(query) = Message::from_bytes(&bytes) else {
            continue;
        };
        if query.message_type() != MessageType::Query
            || !query.queries().iter().any(|q| {
                q.name() == name && matches!(q.query_type(), RecordType::A | RecordType::ANY)
            })
        {
            continue;
        }
        let one_shot = asker.port() != PORT;
        let mut answer = Message::new();
        answer
            .set_id(if one_shot { query.id() } else { 0 })
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_authoritative(true);
        if one_shot {
            // RFC 6762 §6.7: a one-shot answer repeats the question.
            answer.add_queries(query.queries().to_vec());
        }
        answer.add_answer(Record::from_rdata(name.clone(), 120, RData::A(A(address))));
        let bytes = answer.to_bytes().map_err(|e| format!("encode: {e}"))?;
        let to = if one_shot {
            asker
        } else {
            SocketAddr::from((GROUP, PORT))
        };
        datagrams
            .send_to(&bytes, to)
            .map_err(|e| format!("answer to {to}: {e}"))?;
        println!("answered {asker}");
    }
    Ok(())
}

fn resolve(name: &Name, within: Duration) -> Result<IpAddr, String> {
    let socket = create_udp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("socket: {e}"))?;
    let datagrams = Datagrams::bind(socket, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .map_err(|e| format!("bind: {e}"))?;
    let mut query = Message::new();
    query
        .set_id(0x6d64)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(name.clone(), RecordType::A));
    let bytes = query.to_bytes().map_err(|e| format!("encode: {e}"))?;
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        datagrams
            .send_to(&bytes, SocketAddr::from((GROUP, PORT)))
            .map_err(|e| format!("query {GROUP}:{PORT}: {e}"))?;
        let until = (Instant::now() + Duration::from_secs(1)).min(deadline);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some((bytes, from)) = datagrams
                .receive(left)
                .map_err(|e| format!("receive: {e}"))?
            else {
                break;
            };
            let Ok(answer) = Message::from_bytes(&bytes) else {
                continue;
            };
            for record in answer.answers() {
                if record.name() == name
                    && let RData::A(a) = record.data()
                {
                    println!("{name} A {} (from {from})", a.0);
                    return Ok(IpAddr::V4(a.0));
                }
            }
        }
    }
    Err(format!("no answer for {name} within {}s", within.as_secs()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["respond", name, address, ..] => {
            let name = fqdn(name);
            let address = address.parse().expect("an IPv4 address");
            respond(&name, address, seconds(args.get(3)))
        }
        ["resolve", name, ..] => {
            let name = fqdn(name);
            resolve(&name, seconds(args.get(2))).map(|_| ())
        }
        _ => {
            eprintln!(
                "usage: mdns respond NAME.local ADDRESS [SECONDS] | mdns resolve NAME.local [SECONDS]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mdns: {error}");
            ExitCode::FAILURE
        }
    }
}
