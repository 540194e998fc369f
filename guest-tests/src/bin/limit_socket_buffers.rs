//! Host limits on socket buffer sizes (the host allows 64 KiB per socket
//! and 160 KiB per store): a huge request is capped per socket, later
//! sockets get what the store has left, and a dropped socket gives its
//! share back. The WIT allows any cap: "it might be silently clamped".
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
    let sizes: Vec<u64> = sockets.iter().map(set_huge).collect();
    println!("receive buffer sizes {sizes:?}");
    // 64 KiB, 64 KiB, the 32 KiB left, then nothing left (the kernel's
    // minimum). Linux reports double what was set.
    assert!(sizes[0] <= 2 * 64 * 1024, "{sizes:?}");
    assert_eq!(sizes[0], sizes[1], "{sizes:?}");
    assert!(sizes[2] < sizes[1], "{sizes:?}");
    assert!(sizes[3] < sizes[2], "{sizes:?}");

    // The send buffer draws on the same budget, which is spent.
    sockets[3]
        .set_send_buffer_size(1 << 30)
        .expect("capped, not refused");
    assert!(sockets[3].send_buffer_size().expect("size") <= sizes[2]);

    let mut sockets = sockets;
    drop(sockets.remove(0));
    let (fresh, _) = bound_socket(IpAddressFamily::Ipv4);
    assert_eq!(
        set_huge(&fresh),
        sizes[0],
        "the dropped socket's share came back"
    );
}
