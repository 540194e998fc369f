//! send([]) after check-send returns ok(0) ("If the input list is empty, the
//! function returns ok(0)").
use guest_tests::*;

fn main() {
    let (socket, _) = bound_socket(IpAddressFamily::Ipv4);
    let (_in, out) = socket.stream(None).expect("stream");
    out.check_send().expect("check-send");
    assert_eq!(out.send(&[]).expect("send([])"), 0);
    out.check_send().expect("check-send");
    assert_eq!(out.send(&[]).expect("send([]) again"), 0);
}
