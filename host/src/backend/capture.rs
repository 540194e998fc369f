//! Packet capture as a layer over any network: every datagram a guest's
//! `send` hands over and every datagram `receive` hands back becomes one
//! record of a pcap file (raw IP, link type 101), with IPv4 or IPv6 and UDP
//! headers made by etherparse (lengths and checksums right), so that
//! tshark and Wireshark open it.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use super::{
    DatagramSocket, Family, Membership, Network, Ready, ReceiveSlots, Received, SendOutcome,
    Transmit,
};

/// Where captured datagrams go, shared by every socket of the networks it
/// wraps.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    writer: PcapWriter<SharedFile>,
    /// The same buffered file, to flush.
    file: SharedFile,
    clock: CaptureClock,
    records: u64,
}

/// A buffered file that the pcap writer and [`Capture::flush`] share.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl io::Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// How records are timestamped.
#[derive(Clone, Copy, Debug)]
enum CaptureClock {
    /// The wall clock.
    Wall,
    /// A fixed start plus tokio's time since the capture began: with a
    /// paused runtime, the same run gives the same file.
    Virtual(tokio::time::Instant),
}

/// The virtual clock's start: 2026-01-01T00:00:00Z.
const VIRTUAL_EPOCH: Duration = Duration::from_secs(1_767_225_600);

impl Capture {
    /// Writes to `path` (created or truncated), timestamped by the wall
    /// clock.
    ///
    /// # Errors
    /// If the file cannot be created or written.
    pub fn to_file(path: &Path) -> io::Result<Self> {
        Self::open(path, CaptureClock::Wall)
    }

    /// Writes to `path`, timestamped from a fixed start by tokio's clock
    /// (virtual on a paused runtime), for byte-identical captures of
    /// simulated runs.
    ///
    /// # Errors
    /// If the file cannot be created or written.
    pub fn to_file_virtual(path: &Path) -> io::Result<Self> {
        Self::open(path, CaptureClock::Virtual(tokio::time::Instant::now()))
    }

    fn open(path: &Path, clock: CaptureClock) -> io::Result<Self> {
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::new(File::create(path)?))));
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(file.clone(), header).map_err(io::Error::other)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Sink {
                writer,
                file,
                clock,
                records: 0,
            })),
        })
    }

    /// `inner`, with every datagram its sockets send and receive captured.
    pub fn wrap(&self, inner: Arc<dyn Network>) -> Arc<dyn Network> {
        Arc::new(CapturingNetwork {
            inner,
            capture: self.clone(),
        })
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
    }

    /// Writes what is buffered to the file.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn flush(&self) -> io::Result<()> {
        let mut file = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .file
            .clone();
        io::Write::flush(&mut file)
    }

    fn record(&self, source: SocketAddr, destination: SocketAddr, payload: &[u8]) {
        let Some(packet) = packet(source, destination, payload) else {
            return;
        };
        let mut sink = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let timestamp = match sink.clock {
            CaptureClock::Wall => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            CaptureClock::Virtual(start) => VIRTUAL_EPOCH + start.elapsed(),
        };
        let length = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let record = PcapPacket::new(timestamp, length, &packet);
        if sink.writer.write_packet(&record).is_ok() {
            sink.records += 1;
        }
    }
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("records", &self.records())
            .finish_non_exhaustive()
    }
}

/// An IP packet carrying `payload` from `source` to `destination`, or
/// `None` when the families differ or the payload is too large for one.
fn packet(source: SocketAddr, destination: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let builder = match (source.ip(), destination.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            etherparse::PacketBuilder::ipv4(from.octets(), to.octets(), 64)
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            etherparse::PacketBuilder::ipv6(from.octets(), to.octets(), 64)
        }
        _ => return None,
    }
    .udp(source.port(), destination.port());
    let mut bytes = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut bytes, payload).ok()?;
    Some(bytes)
}

#[derive(Debug)]
struct CapturingNetwork {
    inner: Arc<dyn Network>,
    capture: Capture,
}

impl Network for CapturingNetwork {
    fn socket(&self, family: Family) -> io::Result<Box<dyn DatagramSocket>> {
        Ok(Box::new(CapturingSocket {
            inner: self.inner.socket(family)?,
            capture: self.capture.clone(),
            peer: Mutex::new(None),
        }))
    }

    fn minimum_charge(&self) -> usize {
        self.inner.minimum_charge()
    }

    fn charge_for_size(&self, size: usize) -> usize {
        self.inner.charge_for_size(size)
    }

    fn size_for_charge(&self, charge: usize) -> usize {
        self.inner.size_for_charge(charge)
    }

    fn is_broadcast(&self, ip: std::net::Ipv4Addr) -> bool {
        self.inner.is_broadcast(ip)
    }
}

#[derive(Debug)]
struct CapturingSocket {
    inner: Box<dyn DatagramSocket>,
    capture: Capture,
    peer: Mutex<Option<SocketAddr>>,
}

impl CapturingSocket {
    /// The source a datagram to `destination` carries: the bound address,
    /// or for a wildcard binding the loopback address when the
    /// destination is loopback (what the kernel picks), the wildcard
    /// otherwise.
    fn source_for(&self, destination: SocketAddr) -> Option<SocketAddr> {
        let mut local = self.inner.local_addr().ok()?;
        if local.ip().is_unspecified() && destination.ip().is_loopback() {
            local.set_ip(destination.ip());
        }
        Some(local)
    }
}

impl DatagramSocket for CapturingSocket {
    fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(addr)
    }

    fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.inner.connect(peer)?;
        *self.peer.lock().unwrap_or_else(PoisonError::into_inner) = Some(peer);
        Ok(())
    }

    fn disconnect(&self) -> io::Result<()> {
        self.inner.disconnect()?;
        *self.peer.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr()
    }

    fn try_send_batch(&self, batch: &[Transmit<'_>]) -> SendOutcome {
        let outcome = self.inner.try_send_batch(batch);
        let peer = *self.peer.lock().unwrap_or_else(PoisonError::into_inner);
        for transmit in &batch[..outcome.sent] {
            if let Some(destination) = transmit.destination.or(peer)
                && let Some(source) = self.source_for(destination)
            {
                self.capture.record(source, destination, transmit.payload);
            }
        }
        outcome
    }

    fn try_receive_batch(
        &self,
        slots: &mut ReceiveSlots,
        max: usize,
        landed: &mut Vec<Received>,
    ) -> io::Result<()> {
        self.inner.try_receive_batch(slots, max, landed)?;
        for received in landed.iter() {
            if let Some(local) = self.source_for(received.source) {
                self.capture
                    .record(received.source, local, slots.datagram(received));
            }
        }
        Ok(())
    }

    fn send_ready(&self) -> Ready<'_> {
        self.inner.send_ready()
    }

    fn receive_ready(&self) -> Ready<'_> {
        self.inner.receive_ready()
    }

    fn writable_now(&self) -> bool {
        self.inner.writable_now()
    }

    fn send_capacity(&self, payload_len: usize) -> usize {
        self.inner.send_capacity(payload_len)
    }

    fn hop_limit(&self) -> io::Result<u8> {
        self.inner.hop_limit()
    }

    fn set_hop_limit(&self, value: u8) -> io::Result<()> {
        self.inner.set_hop_limit(value)
    }

    fn receive_buffer_size(&self) -> io::Result<usize> {
        self.inner.receive_buffer_size()
    }

    fn set_receive_buffer_size(&self, size: usize) -> io::Result<()> {
        self.inner.set_receive_buffer_size(size)
    }

    fn send_buffer_size(&self) -> io::Result<usize> {
        self.inner.send_buffer_size()
    }

    fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.inner.set_send_buffer_size(size)
    }

    fn buffer_charges(&self) -> io::Result<(usize, usize)> {
        self.inner.buffer_charges()
    }

    fn coalescing_reserve(&self) -> usize {
        self.inner.coalescing_reserve()
    }

    fn allow_coalescing(&self) {
        self.inner.allow_coalescing();
    }

    fn shared_port(&self) -> io::Result<bool> {
        self.inner.shared_port()
    }

    fn set_shared_port(&self, shared: bool) -> io::Result<()> {
        self.inner.set_shared_port(shared)
    }

    fn join_group(&self, membership: &Membership) -> io::Result<()> {
        self.inner.join_group(membership)
    }

    fn leave_group(&self, membership: &Membership) -> io::Result<()> {
        self.inner.leave_group(membership)
    }

    fn multicast_hop_limit(&self) -> io::Result<u8> {
        self.inner.multicast_hop_limit()
    }

    fn set_multicast_hop_limit(&self, value: u8) -> io::Result<()> {
        self.inner.set_multicast_hop_limit(value)
    }

    fn multicast_loopback(&self) -> io::Result<bool> {
        self.inner.multicast_loopback()
    }

    fn set_multicast_loopback(&self, enabled: bool) -> io::Result<()> {
        self.inner.set_multicast_loopback(enabled)
    }

    fn set_multicast_interface(&self, index: u32) -> io::Result<()> {
        self.inner.set_multicast_interface(index)
    }

    fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    fn set_broadcast(&self, enabled: bool) -> io::Result<()> {
        self.inner.set_broadcast(enabled)
    }
}
