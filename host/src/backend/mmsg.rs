//! Linux's batch syscalls behind a small safe API: one syscall for a whole
//! `send` or `receive` batch, with the syscall scratch (message headers,
//! iovecs, addresses, control messages) on the stack, so nothing is
//! allocated per call.
//!
//! `sendmmsg` and `recvmmsg` carry any mix of datagrams; a run of
//! equal-sized datagrams to one destination goes as one segmented send (UDP
//! GSO), which the kernel builds as a single packet and splits into
//! datagrams on the wire (or, on loopback, at the receiving socket). A
//! socket that asked for coalesced receives (UDP GRO) may get such a run
//! back as one buffer, reported with its segment size.
//!
//! Every `unsafe` block here hands the kernel pointers into locals of the
//! same function that outlive the syscall, and reads back only what the
//! kernel reported it wrote.
#![allow(unsafe_code)]

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::ptr;

use super::Transmit;

/// Most datagrams one `sendmmsg` or `recvmmsg` takes here: the stack
/// scratch is sized for it. Larger batches take several calls.
pub(super) const MAX_BATCH: usize = 64;

/// Most segments the kernel accepts in one segmented send
/// (`UDP_MAX_SEGMENTS` on older kernels; newer ones take more), and most it
/// coalesces into one received buffer (`UDP_GRO_CNT_MAX`).
pub(super) const MAX_SEGMENTS: usize = 64;

/// Most bytes one segmented send may carry: the largest IPv4 UDP payload.
const MAX_SEGMENTED_BYTES: usize = 65_507;

/// Room for the control messages a received datagram may carry: the
/// kernel's drop counter (`SO_RXQ_OVFL`, a `u32`) and the segment size of a
/// coalesced buffer (`UDP_GRO`, an `int`), each 16 bytes with its header.
/// `u64`s keep it aligned for `cmsghdr`.
type ControlBuffer = [u64; 8];

/// A socket address as the kernel reads or writes it.
#[repr(C)]
#[derive(Clone, Copy)]
union RawAddress {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddress {
    fn zeroed() -> Self {
        // SAFETY: both variants are plain C structs for which all-zero bytes
        // are a valid (unspecified-family) value.
        unsafe { mem::zeroed() }
    }

    /// `addr` in the kernel's layout, with its length.
    fn from_socket_addr(addr: &SocketAddr) -> (Self, libc::socklen_t) {
        let mut raw = Self::zeroed();
        match addr {
            SocketAddr::V4(v4) => {
                raw.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                (raw, mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
            }
            SocketAddr::V6(v6) => {
                raw.v6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                (raw, mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
            }
        }
    }

    /// The address the kernel wrote, if it is an IP one.
    fn to_socket_addr(self, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        // SAFETY: the family field sits at the same offset in both variants,
        // and the kernel wrote at least `len` bytes of the variant it names.
        let family = i32::from(unsafe { self.v4.sin_family });
        if family == libc::AF_INET && len >= mem::size_of::<libc::sockaddr_in>() {
            // SAFETY: as above: an AF_INET address fills `v4`.
            let v4 = unsafe { self.v4 };
            let ip = Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes());
            return Some(SocketAddrV4::new(ip, u16::from_be(v4.sin_port)).into());
        }
        if family == libc::AF_INET6 && len >= mem::size_of::<libc::sockaddr_in6>() {
            // SAFETY: as above: an AF_INET6 address fills `v6`.
            let v6 = unsafe { self.v6 };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            return Some(
                SocketAddrV6::new(
                    ip,
                    u16::from_be(v6.sin6_port),
                    u32::from_be(v6.sin6_flowinfo),
                    v6.sin6_scope_id,
                )
                .into(),
            );
        }
        None
    }
}

fn iovec(bytes: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    }
}

/// A zeroed `msghdr`: the fields a platform adds stay zero.
fn empty_msghdr() -> libc::msghdr {
    // SAFETY: `msghdr` is a plain C struct; all-zero is "no name, no
    // vectors, no control".
    unsafe { mem::zeroed() }
}

/// How many datagrams from the front of `batch` can go as one segmented
/// send: all to the same destination, all of the first one's size except
/// that the last may be shorter, none empty. Below 2 there is nothing to
/// gain.
pub(super) fn segmentable_run(batch: &[Transmit<'_>]) -> usize {
    let Some(first) = batch.first() else {
        return 0;
    };
    let size = first.payload.len();
    if size == 0 {
        return 0;
    }
    let limit = MAX_SEGMENTS.min(MAX_SEGMENTED_BYTES / size);
    let mut run = 0;
    for transmit in batch.iter().take(limit) {
        if transmit.destination != first.destination
            || transmit.payload.is_empty()
            || transmit.payload.len() > size
        {
            break;
        }
        run += 1;
        if transmit.payload.len() < size {
            // A shorter segment can only be the last.
            break;
        }
    }
    run
}

/// Sends `run` (from [`segmentable_run`]) as one segmented send: all of it
/// or none.
pub(super) fn send_segmented(socket: &impl AsRawFd, run: &[Transmit<'_>]) -> io::Result<usize> {
    let run = &run[..run.len().min(MAX_SEGMENTS)];
    let segment_size = u16::try_from(run[0].payload.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut iovecs = [iovec(&[]); MAX_SEGMENTS];
    for (slot, transmit) in iovecs.iter_mut().zip(run) {
        *slot = iovec(transmit.payload);
    }
    let (mut name, name_len) = match &run[0].destination {
        Some(addr) => RawAddress::from_socket_addr(addr),
        None => (RawAddress::zeroed(), 0),
    };
    let mut control: ControlBuffer = [0; 8];
    let mut message = empty_msghdr();
    if name_len > 0 {
        message.msg_name = ptr::from_mut(&mut name).cast();
        message.msg_namelen = name_len;
    }
    message.msg_iov = iovecs.as_mut_ptr();
    message.msg_iovlen = run.len() as _;
    message.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    message.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as _;
    // SAFETY: the control buffer is at least CMSG_SPACE(2) bytes and aligned
    // for `cmsghdr`, so the first header and its data fit inside it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_UDP;
        (*header).cmsg_type = libc::UDP_SEGMENT;
        (*header).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
        ptr::write_unaligned(libc::CMSG_DATA(header).cast::<u16>(), segment_size);
    }
    // SAFETY: every pointer in `message` points into a local above, alive
    // across the call; the kernel only reads them.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(run.len())
}

/// Sends the front of `batch` in one `sendmmsg`: returns how many datagrams
/// the kernel took (at least one), or why it took none.
pub(super) fn send(socket: &impl AsRawFd, batch: &[Transmit<'_>]) -> io::Result<usize> {
    let batch = &batch[..batch.len().min(MAX_BATCH)];
    // Only the first `batch.len()` entries are written and handed over:
    // scratch for 64 messages would otherwise be zeroed on every call.
    let mut iovecs = [MaybeUninit::<libc::iovec>::uninit(); MAX_BATCH];
    let mut names = [MaybeUninit::<RawAddress>::uninit(); MAX_BATCH];
    let mut headers = [MaybeUninit::<libc::mmsghdr>::uninit(); MAX_BATCH];
    for (index, transmit) in batch.iter().enumerate() {
        let iov = iovecs[index].write(iovec(transmit.payload));
        let mut header = empty_msghdr();
        header.msg_iov = ptr::from_mut(iov);
        header.msg_iovlen = 1;
        if let Some(addr) = &transmit.destination {
            let (name, len) = RawAddress::from_socket_addr(addr);
            header.msg_name = ptr::from_mut(names[index].write(name)).cast();
            header.msg_namelen = len;
        }
        headers[index].write(libc::mmsghdr {
            msg_hdr: header,
            msg_len: 0,
        });
    }
    // SAFETY: the first `batch.len()` headers are initialised and point into
    // `iovecs` and `names`, locals alive across the call; the kernel reads
    // them and writes only each header's `msg_len`.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr().cast::<libc::mmsghdr>(),
            batch.len() as _,
            libc::MSG_DONTWAIT,
        )
    };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        // Not expected for a non-empty batch; report it as a full buffer
        // rather than spin.
        0 => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n as usize),
    }
}

/// One buffer `recvmmsg` filled.
#[derive(Clone, Copy, Debug)]
pub(super) struct Message {
    /// Bytes written to the buffer.
    pub(super) len: usize,
    /// Who sent it.
    pub(super) source: SocketAddr,
    /// For a coalesced buffer, the size of each datagram in it (the last
    /// may be shorter); `None` for one datagram.
    pub(super) segment_size: Option<usize>,
}

/// What one [`receive`] got besides the messages.
#[derive(Debug, Default)]
pub(super) struct ReceiveInfo {
    /// How many buffers were filled.
    pub(super) messages: usize,
    /// The kernel's count of datagrams this socket dropped for a full
    /// receive queue, as of the last datagram that reported it.
    pub(super) kernel_drops: Option<u32>,
}

/// Receives into `buffers` (at most [`MAX_BATCH`] of them) the buffers
/// queued, in one `recvmmsg`, calling `each` with each message's buffer
/// index and [`Message`]. Fails with would-block when nothing is queued.
pub(super) fn receive<'a>(
    socket: &impl AsRawFd,
    buffers: impl IntoIterator<Item = &'a mut [u8]>,
    mut each: impl FnMut(usize, Message),
) -> io::Result<ReceiveInfo> {
    // Only the first `count` entries are written and handed over: scratch
    // for 64 messages would otherwise be zeroed on every call.
    let mut iovecs = [MaybeUninit::<libc::iovec>::uninit(); MAX_BATCH];
    let mut names = [MaybeUninit::<RawAddress>::uninit(); MAX_BATCH];
    let mut controls = [MaybeUninit::<ControlBuffer>::uninit(); MAX_BATCH];
    let mut headers = [MaybeUninit::<libc::mmsghdr>::uninit(); MAX_BATCH];
    let mut count = 0;
    for (index, buffer) in buffers.into_iter().take(MAX_BATCH).enumerate() {
        count = index + 1;
        let iov = iovecs[index].write(libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        });
        let mut header = empty_msghdr();
        header.msg_iov = ptr::from_mut(iov);
        header.msg_iovlen = 1;
        // Zeroed, so that a name shorter than the kernel's promise still
        // reads as initialised bytes.
        header.msg_name = ptr::from_mut(names[index].write(RawAddress::zeroed())).cast();
        header.msg_namelen = mem::size_of::<RawAddress>() as libc::socklen_t;
        header.msg_control = controls[index].as_mut_ptr().cast();
        header.msg_controllen = mem::size_of::<ControlBuffer>() as _;
        headers[index].write(libc::mmsghdr {
            msg_hdr: header,
            msg_len: 0,
        });
    }
    if count == 0 {
        return Ok(ReceiveInfo::default());
    }
    // SAFETY: the first `count` headers are initialised and point into
    // `iovecs` (over the caller's buffers, borrowed mutably for `'a`),
    // `names` and `controls`, all alive across the call; the kernel writes
    // at most their stated lengths and reports how many messages it filled.
    let filled = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr().cast::<libc::mmsghdr>(),
            count as _,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
        )
    };
    if filled < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut info = ReceiveInfo {
        messages: filled as usize,
        kernel_drops: None,
    };
    for (index, header) in headers.iter().enumerate().take(info.messages) {
        // SAFETY: the first `count` headers were initialised above, and the
        // kernel filled no more than those.
        let header = unsafe { header.assume_init_ref() };
        let (drops, segment_size) = control_messages(&header.msg_hdr);
        info.kernel_drops = info.kernel_drops.max(drops);
        // SAFETY: initialised (zeroed) above, then written by the kernel;
        // `to_socket_addr` reads only what the family and length say is
        // there.
        let name = unsafe { names[index].assume_init() };
        let source = name
            .to_socket_addr(header.msg_hdr.msg_namelen)
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        let len = header.msg_len as usize;
        each(
            index,
            Message {
                len,
                source,
                segment_size: segment_size.filter(|size| *size > 0 && *size < len),
            },
        );
    }
    Ok(info)
}

/// The kernel's drop counter and a coalesced buffer's segment size, from a
/// received message's control messages.
fn control_messages(header: &libc::msghdr) -> (Option<u32>, Option<usize>) {
    let (mut drops, mut segment_size) = (None, None);
    // SAFETY: the kernel set `msg_controllen` to what it wrote into the
    // control buffer; CMSG_FIRSTHDR/CMSG_NXTHDR stay within it, and each
    // value is read unaligned from its header's data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
                drops = Some(ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()));
            } else if level == libc::SOL_UDP && kind == libc::UDP_GRO {
                let size = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                segment_size = usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    (drops, segment_size)
}

/// The kernel's cumulative count of datagrams it dropped for `socket`
/// (`SK_MEMINFO_DROPS` of `SO_MEMINFO`): the counter `SO_RXQ_OVFL` reports
/// with received datagrams, read without one.
pub(super) fn kernel_drops(socket: &impl AsRawFd) -> io::Result<u32> {
    // From linux/sock_diag.h; the kernel fills at most this many.
    const SK_MEMINFO_DROPS: usize = 8;
    const SK_MEMINFO_VARS: usize = 9;
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the local array
    // and stores how many it wrote in `len`.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < (SK_MEMINFO_DROPS + 1) * mem::size_of::<u32>() {
        return Err(io::Error::other("SO_MEMINFO without a drop count"));
    }
    Ok(info[SK_MEMINFO_DROPS])
}

/// Asks the kernel to coalesce runs of datagrams into one buffer (UDP GRO),
/// or to stop.
pub(super) fn set_coalescing(socket: &impl AsRawFd, on: bool) -> io::Result<()> {
    let value = libc::c_int::from(on);
    // SAFETY: the option value is a local `int`, passed with its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            ptr::from_ref(&value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Joins (or leaves) `group` for datagrams from `source` only, on
/// interface `interface` (`MCAST_JOIN_SOURCE_GROUP`, which takes both
/// families and an interface index).
pub(super) fn source_specific_membership(
    socket: &impl AsRawFd,
    join: bool,
    group: std::net::IpAddr,
    source: std::net::IpAddr,
    interface: u32,
) -> io::Result<()> {
    // SAFETY: `group_source_req` is a plain C struct; all-zero is valid.
    let mut request: libc::group_source_req = unsafe { mem::zeroed() };
    request.gsr_interface = interface;
    for (address, storage) in [
        (group, &mut request.gsr_group),
        (source, &mut request.gsr_source),
    ] {
        let (raw, len) = RawAddress::from_socket_addr(&SocketAddr::new(address, 0));
        // SAFETY: `sockaddr_storage` is larger than either variant, and
        // `len` is the size of the one `from_socket_addr` wrote.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr::from_ref(&raw).cast::<u8>(),
                ptr::from_mut(storage).cast::<u8>(),
                len as usize,
            );
        }
    }
    let (level, name) = match (group.is_ipv4(), join) {
        (true, true) => (libc::IPPROTO_IP, libc::MCAST_JOIN_SOURCE_GROUP),
        (true, false) => (libc::IPPROTO_IP, libc::MCAST_LEAVE_SOURCE_GROUP),
        (false, true) => (libc::IPPROTO_IPV6, libc::MCAST_JOIN_SOURCE_GROUP),
        (false, false) => (libc::IPPROTO_IPV6, libc::MCAST_LEAVE_SOURCE_GROUP),
    };
    // SAFETY: the option value is a local struct, passed with its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            ptr::from_ref(&request).cast(),
            mem::size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_the_kernel_layout() {
        for addr in [
            "127.0.0.1:53",
            "[::1]:5353",
            "[fe80::1%7]:1",
            "255.255.255.255:65535",
        ] {
            let addr: SocketAddr = addr.parse().expect("address");
            let (raw, len) = RawAddress::from_socket_addr(&addr);
            assert_eq!(raw.to_socket_addr(len), Some(addr));
        }
        let flow: SocketAddr = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 9, 0x12345, 0).into();
        let (raw, len) = RawAddress::from_socket_addr(&flow);
        assert_eq!(raw.to_socket_addr(len), Some(flow));
        let (raw, _) = RawAddress::from_socket_addr(&"[::1]:1".parse().expect("address"));
        assert_eq!(raw.to_socket_addr(4), None, "a short name is no address");
    }
}
