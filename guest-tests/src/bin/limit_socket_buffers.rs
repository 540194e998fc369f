//! Host limits on socket buffer sizes (the host allows 64 KiB per socket
//! and 160 KiB per store): a huge request is capped per socket and reads
//! back as the capped size, later sockets get what the store has left, a
//! socket asking when nothing is left keeps the size it had, and a dropped
//! socket gives its share back. The WIT allows any cap: "it might be
//! silently clamped".
use guest_tests::*;

fn set_huge(socket: &UdpSocket) -> u64 {
    socket
        .set_receive_buffer_size(1 << 30)
        .expect("a huge size is capped, not refused");
    socket.receive_buffer_size().expect("receive-buffer-size")
}

fn main() {
    let sockets: Vec<UdpSocket> = (0..4)
        .map(|_| bound_socket(IpAddressFamily::Ipv4).0)
        .collect();
    let untouched = sockets[3]
        .receive_buffer_size()
        .expect("receive-buffer-size");
    let sizes: Vec<u64> = sockets.iter().map(set_huge).collect();
    println!("receive buffer sizes {sizes:?}");
    // 64 KiB, 64 KiB, the 32 KiB left; then nothing is left, and the size
    // stays what it was (not the kernel's minimum).
    assert_eq!(sizes[..3], [64 * 1024, 64 * 1024, 32 * 1024], "{sizes:?}");
    assert_eq!(sizes[3], untouched, "{sizes:?}");

    // The send buffer draws on the same budget, which is spent.
    let send_before = sockets[3].send_buffer_size().expect("size");
    sockets[3]
        .set_send_buffer_size(1 << 30)
        .expect("capped, not refused");
    assert_eq!(sockets[3].send_buffer_size().expect("size"), send_before);

    let mut sockets = sockets;
    drop(sockets.remove(0));
    let (fresh, _) = bound_socket(IpAddressFamily::Ipv4);
    assert_eq!(
        set_huge(&fresh),
        sizes[0],
        "the dropped socket's share came back"
    );
}
