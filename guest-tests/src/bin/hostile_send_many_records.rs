//! A `send` whose list holds COUNT records that all point at one 64 KiB
//! buffer, made with the raw canonical ABI (bindings would copy each
//! record's data): lifting it makes the host copy COUNT × 64 KiB before the
//! provider can see that `check-send` permitted far fewer. The host must
//! bound what one call may cost (hostcall fuel) and trap. With COUNT 1 it is
//! an ordinary, permitted send, which shows the layout below is right.
//! Argument: COUNT. Prints `sent N` when the call returns.
use guest_tests::*;

#[link(wasm_import_module = "wasi:sockets/udp@0.2.1")]
unsafe extern "C" {
    /// `[method]outgoing-datagram-stream.send`: (self, list ptr, list len,
    /// return area).
    #[link_name = "[method]outgoing-datagram-stream.send"]
    fn raw_send(stream: i32, list: *const u8, len: usize, result: *mut u8);
}

/// `outgoing-datagram`: `data: list<u8>` (pointer, length) then
/// `remote-address: option<ip-socket-address>`, 44 bytes aligned to 4.
const RECORD_SIZE: usize = 44;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: hostile_send_many_records COUNT");
    let (receiver, receiver_addr) = bound_socket(IpAddressFamily::Ipv4);
    let (incoming, _receiver_out) = receiver.stream(None).expect("stream receiver");
    let (sender, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_sender_in, outgoing) = sender.stream(Some(receiver_addr)).expect("connect");
    let permitted = outgoing.check_send().expect("check-send");
    assert!(permitted >= 1);

    let payload = vec![0x5au8; 64 * 1024 - 100];
    let mut list = vec![0u8; count * RECORD_SIZE];
    for record in list.chunks_exact_mut(RECORD_SIZE) {
        record[0..4].copy_from_slice(&(payload.as_ptr() as u32).to_le_bytes());
        record[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        // remote-address: none (the stream is connected).
        record[8] = 0;
    }
    let mut result = [0u64; 2];
    println!("sending {count} records");
    // SAFETY: `list` holds `count` well-formed records whose data is
    // `payload`; `result` is the 16-byte, 8-aligned return area of
    // `result<u64, error-code>`. Both outlive the call.
    unsafe {
        raw_send(
            outgoing.handle() as i32,
            list.as_ptr(),
            count,
            result.as_mut_ptr().cast(),
        );
    }
    // The discriminant is the first byte (0: ok), the u64 at offset 8.
    assert_eq!(result[0] & 0xff, 0, "send returned an error: {result:?}");
    let sent = result[1];
    println!("sent {sent}");
    let got = receive_exactly(&incoming, sent as usize);
    assert_eq!(got[0].data.len(), payload.len());
}
