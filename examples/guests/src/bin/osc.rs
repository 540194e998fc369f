//! Open Sound Control with the `rosc` crate:
//!
//! - `osc send HOST:PORT`: sends `/synth/freq ,ifs 440 0.5 "sine"` and a
//!   bundle of `/mixer/gain ,f 0.8` and `/mixer/mute ,T`;
//! - `osc listen ADDR COUNT`: binds ADDR, prints COUNT messages (the
//!   messages of a bundle one by one) as `PATH ARGS`, then exits.
use std::net::{SocketAddr, UdpSocket};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

fn print_packet(packet: &OscPacket, printed: &mut usize) {
    match packet {
        OscPacket::Message(message) => {
            let args: Vec<String> = message
                .args
                .iter()
                .map(|arg| match arg {
                    OscType::Int(i) => i.to_string(),
                    OscType::Float(f) => f.to_string(),
                    OscType::String(s) => format!("{s:?}"),
                    OscType::Bool(b) => b.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            println!("{} {}", message.addr, args.join(" "));
            *printed += 1;
        }
        OscPacket::Bundle(bundle) => {
            for packet in &bundle.content {
                print_packet(packet, printed);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["send", target] => {
            let target: SocketAddr = target.parse().expect("HOST:PORT");
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
            let message = OscPacket::Message(OscMessage {
                addr: "/synth/freq".into(),
                args: vec![
                    OscType::Int(440),
                    OscType::Float(0.5),
                    OscType::String("sine".into()),
                ],
            });
            let bundle = OscPacket::Bundle(OscBundle {
                timetag: OscTime::from((0, 1)),
                content: vec![
                    OscPacket::Message(OscMessage {
                        addr: "/mixer/gain".into(),
                        args: vec![OscType::Float(0.8)],
                    }),
                    OscPacket::Message(OscMessage {
                        addr: "/mixer/mute".into(),
                        args: vec![OscType::Bool(true)],
                    }),
                ],
            });
            for packet in [message, bundle] {
                let bytes = rosc::encoder::encode(&packet).expect("encode");
                socket.send_to(&bytes, target).expect("send");
            }
            println!("sent 1 message and a bundle of 2 to {target}");
        }
        ["listen", addr, count] => {
            let count: usize = count.parse().expect("COUNT");
            let socket = UdpSocket::bind(addr).expect("bind");
            println!("listening on {}", socket.local_addr().expect("addr"));
            let mut buffer = [0u8; rosc::decoder::MTU];
            let mut printed = 0;
            while printed < count {
                let (len, _) = socket.recv_from(&mut buffer).expect("receive");
                match rosc::decoder::decode_udp(&buffer[..len]) {
                    Ok((_, packet)) => print_packet(&packet, &mut printed),
                    Err(error) => eprintln!("not OSC: {error}"),
                }
            }
        }
        _ => panic!("usage: osc send HOST:PORT | osc listen ADDR COUNT"),
    }
}
