//! How much one store's guests may use: sockets, batch sizes, datagram size,
//! socket buffer space and send rate. Every limit has a documented default
//! on [`Limits`] and a method on [`UdpCtxBuilder`](crate::UdpCtxBuilder).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

// tokio's clock, which a paused runtime makes virtual: the simulated
// network's time.
use tokio::time::Instant;

/// Largest payload a UDP datagram can carry over IPv6 (65535 − 8 byte
/// header); IPv4's is 65507.
pub const MAX_DATAGRAM_SIZE: usize = 65_527;

/// Default for [`Limits::max_sockets`].
pub const DEFAULT_MAX_SOCKETS: usize = 1024;
/// Default for [`Limits::max_send_batch`].
pub const DEFAULT_MAX_SEND_BATCH: u64 = 64;
/// Default for [`Limits::max_receive_batch`].
pub const DEFAULT_MAX_RECEIVE_BATCH: usize = 64;
/// Default for [`Limits::max_socket_buffer`]: 4 MiB.
pub const DEFAULT_MAX_SOCKET_BUFFER: usize = 4 << 20;
/// Default for [`Limits::max_store_buffers`]: 64 MiB.
pub const DEFAULT_MAX_STORE_BUFFERS: usize = 64 << 20;
/// Default for [`Limits::max_reply_peers`].
pub const DEFAULT_MAX_REPLY_PEERS: usize = 256;

/// A send rate: datagrams per second, bytes per second, or both.
///
/// ```
/// use wasi_udp_host::SendRate;
/// let rate = SendRate::datagrams(1000).and_bytes(1 << 20);
/// assert_eq!(rate.datagrams_per_second, Some(1000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendRate {
    /// Most datagrams per second, if limited.
    pub datagrams_per_second: Option<u64>,
    /// Most bytes per second, if limited: each datagram's payload plus its
    /// packet's IP and UDP headers (28 bytes over IPv4, 48 over IPv6), so
    /// empty datagrams are not free. The datagram rate bounds packets.
    pub bytes_per_second: Option<u64>,
}

impl SendRate {
    /// No limit.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// At most `per_second` datagrams per second.
    pub fn datagrams(per_second: u64) -> Self {
        Self {
            datagrams_per_second: Some(per_second),
            bytes_per_second: None,
        }
    }

    /// At most `per_second` bytes per second (payload and headers).
    pub fn bytes(per_second: u64) -> Self {
        Self {
            datagrams_per_second: None,
            bytes_per_second: Some(per_second),
        }
    }

    /// The same rate, also limited to `per_second` datagrams per second.
    pub fn and_datagrams(mut self, per_second: u64) -> Self {
        self.datagrams_per_second = Some(per_second);
        self
    }

    /// The same rate, also limited to `per_second` bytes per second.
    pub fn and_bytes(mut self, per_second: u64) -> Self {
        self.bytes_per_second = Some(per_second);
        self
    }

    /// Whether either rate is limited.
    pub fn is_limited(&self) -> bool {
        self.datagrams_per_second.is_some() || self.bytes_per_second.is_some()
    }
}

/// The limits of one store, with their defaults:
///
/// | limit | default | when reached |
/// |---|---|---|
/// | `max_sockets` | [`DEFAULT_MAX_SOCKETS`] (1024) live sockets | `create-udp-socket` returns `new-socket-limit` (as it does when the process runs out of descriptors) |
/// | `max_send_batch` | [`DEFAULT_MAX_SEND_BATCH`] (64) | `check-send` permits at most this many datagrams |
/// | `max_receive_batch` | [`DEFAULT_MAX_RECEIVE_BATCH`] (64) | `receive` returns at most this many, whatever `max-results` asks |
/// | `max_datagram_size` | [`MAX_DATAGRAM_SIZE`] (65 527 bytes, no limit) | `send` returns `datagram-too-large`; larger received datagrams are dropped and counted |
/// | `max_socket_buffer` | [`DEFAULT_MAX_SOCKET_BUFFER`] (4 MiB) | `set-receive-buffer-size` / `set-send-buffer-size` are capped (the WIT allows capping) |
/// | `max_store_buffers` | [`DEFAULT_MAX_STORE_BUFFERS`] (64 MiB) | the kernel buffer memory of a store's live sockets, as the kernel accounts it (receive and send buffers, system defaults and Linux's doubling included): a new socket gets smaller buffers when the defaults no longer fit, and `new-socket-limit` when not even the kernel's smallest do; a buffer size a guest asks for is capped to what is left, and with nothing left the socket keeps its size; a socket the budget still affords beyond that also gets 64 KiB of host memory for coalesced receives |
/// | `send_rate` | unlimited | `check-send` returns 0 until tokens return, and its pollable wakes then; each datagram costs its payload plus its packet's IP and UDP headers |
/// | `max_reply_peers` | [`DEFAULT_MAX_REPLY_PEERS`] (256) per socket | the peers a socket sent to longest ago are forgotten: their replies then need a `receive` rule |
///
/// Nothing else is held for a guest on the host: datagrams wait in the
/// kernel's socket buffers (bounded above), and each store keeps one set of
/// receive slots (2 MiB at most, resident only as datagrams land).
///
/// Every limit is a public field; start from [`Limits::default`] and change
/// what you need, or use the matching [`UdpCtxBuilder`](crate::UdpCtxBuilder)
/// method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most live sockets (counting sockets whose streams are still alive).
    pub max_sockets: usize,
    /// Most datagrams one `check-send` permits.
    pub max_send_batch: u64,
    /// Most datagrams one `receive` returns.
    pub max_receive_batch: usize,
    /// Largest datagram payload, sent or received.
    pub max_datagram_size: usize,
    /// Largest send or receive buffer a guest may set on one socket, in the
    /// units the guest sets it in.
    pub max_socket_buffer: usize,
    /// Most kernel buffer memory a store's live sockets may hold, as the
    /// kernel accounts it. Each socket may queue one datagram beyond its
    /// receive buffer (the kernel admits a datagram while the queue is not
    /// yet over its size), so the kernel memory bound is this plus one
    /// datagram per socket. Sockets it can afford beyond their kernel
    /// buffers also get 64 KiB of host memory each from it, for the rest of
    /// a coalesced receive (UDP GRO) waiting between receives; the others
    /// receive datagram by datagram.
    pub max_store_buffers: usize,
    /// The store's send rate; sends from all its sockets share it.
    pub send_rate: SendRate,
    /// Most peers one socket remembers having sent to, whose replies it
    /// receives without a `receive` rule.
    pub max_reply_peers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_send_batch: DEFAULT_MAX_SEND_BATCH,
            max_receive_batch: DEFAULT_MAX_RECEIVE_BATCH,
            max_datagram_size: MAX_DATAGRAM_SIZE,
            max_socket_buffer: DEFAULT_MAX_SOCKET_BUFFER,
            max_store_buffers: DEFAULT_MAX_STORE_BUFFERS,
            send_rate: SendRate::default(),
            max_reply_peers: DEFAULT_MAX_REPLY_PEERS,
        }
    }
}

impl Limits {
    /// The hostcall fuel (bytes a guest may hand the host in one call, see
    /// `wasmtime::Store::set_hostcall_fuel`) that the largest legal UDP
    /// call needs: a `send` of `max_send_batch` datagrams of
    /// `max_datagram_size` bytes each. wasmtime copies a call's arguments
    /// before the provider sees them, so a `send` of far more datagrams than
    /// `check-send` permitted would otherwise make the host allocate up to
    /// wasmtime's default of 128 MiB before the call traps. Set it on every
    /// store (the other WASI calls need far less: wasi-libc writes in
    /// buffers of a few KiB).
    pub fn hostcall_fuel(&self) -> usize {
        // Each list element costs its host-side size too (a `Vec` and an
        // optional address, well under 128 bytes), and other arguments a
        // little.
        let batch = usize::try_from(self.max_send_batch).unwrap_or(usize::MAX);
        batch
            .saturating_mul(self.max_datagram_size.saturating_add(128))
            .saturating_add(64 << 10)
    }

    /// The limits as `name value` lines, as the CLI's flags name them.
    pub fn explain(&self) -> String {
        let rate = |rate: Option<u64>, unit: &str| match rate {
            Some(rate) => format!("{rate} {unit}/s"),
            None => "unlimited".into(),
        };
        [
            format!("max-sockets        {}", self.max_sockets),
            format!("max-send-batch     {}", self.max_send_batch),
            format!("max-receive-batch  {}", self.max_receive_batch),
            format!("max-datagram-size  {} bytes", self.max_datagram_size),
            format!("max-socket-buffer  {} bytes", self.max_socket_buffer),
            format!("max-store-buffers  {} bytes", self.max_store_buffers),
            format!(
                "send-rate          {}",
                rate(self.send_rate.datagrams_per_second, "datagrams")
            ),
            format!(
                "send-bytes-rate    {}",
                rate(self.send_rate.bytes_per_second, "bytes")
            ),
            format!("max-reply-peers    {} per socket", self.max_reply_peers),
        ]
        .join("\n")
    }
}

/// The kernel buffer memory a store's live sockets may hold: the sum of
/// each socket's receive and send buffer sizes as the kernel accounts them
/// (system defaults and Linux's doubling included).
#[derive(Debug)]
pub(crate) struct BufferBudget {
    per_store: usize,
    in_use: AtomicUsize,
}

impl BufferBudget {
    pub(crate) fn new(per_store: usize) -> Self {
        Self {
            per_store,
            in_use: AtomicUsize::new(0),
        }
    }

    /// Charges `bytes` if they fit.
    pub(crate) fn try_charge(&self, bytes: usize) -> bool {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                in_use
                    .checked_add(bytes)
                    .filter(|total| *total <= self.per_store)
            })
            .is_ok()
    }

    /// What is left.
    pub(crate) fn available(&self) -> usize {
        self.per_store
            .saturating_sub(self.in_use.load(Ordering::Acquire))
    }

    /// A socket charged `old` is now charged `new` (which the caller sized
    /// to fit; the kernel's own rounding may overshoot by a little).
    pub(crate) fn replace(&self, old: usize, new: usize) {
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                Some(in_use.saturating_sub(old).saturating_add(new))
            });
    }

    /// A socket charged `bytes` is gone.
    pub(crate) fn release(&self, bytes: usize) {
        self.replace(bytes, 0);
    }

    /// Bytes currently charged.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }
}

/// A token bucket for a store's sends. Tokens refill continuously at the
/// configured rates; the bucket holds a tenth of a second's worth (at least
/// one datagram). A datagram costs one datagram token and its payload plus
/// its packet's IP and UDP headers in byte tokens, so empty datagrams are
/// not free. A datagram may go while any byte tokens are left and so
/// overdraw the bucket (that way a datagram larger than a tenth of a
/// second's worth can go at all); the next one waits out the debt.
#[derive(Debug)]
pub(crate) struct SendBucket {
    rate: SendRate,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    datagrams: f64,
    bytes: f64,
    refilled: Instant,
}

impl SendBucket {
    pub(crate) fn new(rate: SendRate) -> Self {
        let state = BucketState {
            datagrams: Self::capacity(rate.datagrams_per_second),
            bytes: Self::capacity(rate.bytes_per_second),
            refilled: Instant::now(),
        };
        Self {
            rate,
            state: Mutex::new(state),
        }
    }

    fn capacity(rate: Option<u64>) -> f64 {
        rate.map_or(f64::INFINITY, |rate| (rate as f64 / 10.0).max(1.0))
    }

    fn refill(&self, state: &mut BucketState, now: Instant) {
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.refilled = now;
        if let Some(rate) = self.rate.datagrams_per_second {
            state.datagrams =
                (state.datagrams + elapsed * rate as f64).min(Self::capacity(Some(rate)));
        }
        if let Some(rate) = self.rate.bytes_per_second {
            state.bytes = (state.bytes + elapsed * rate as f64).min(Self::capacity(Some(rate)));
        }
    }

    /// How many datagrams costing `cost` bytes each (payload and headers)
    /// the tokens allow now, or when they will allow one.
    pub(crate) fn permits(&self, cost: usize) -> Result<u64, Instant> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refill(&mut state, now);
        let cost = cost.max(1) as f64;
        if state.datagrams >= 1.0 && state.bytes > 0.0 {
            let by_count = state.datagrams.floor();
            // The last one may overdraw.
            let by_bytes = (state.bytes / cost).ceil();
            // Saturating float-to-int conversion: infinity becomes u64::MAX.
            return Ok(by_count.min(by_bytes) as u64);
        }
        let wait_for = |missing: f64, rate: Option<u64>| match rate {
            Some(rate) if missing > 0.0 => missing / rate.max(1) as f64,
            _ => 0.0,
        };
        // Byte tokens must be above zero again: the debt plus a little.
        let wait = wait_for(1.0 - state.datagrams, self.rate.datagrams_per_second)
            .max(wait_for(1.0 - state.bytes, self.rate.bytes_per_second));
        // Rounded up to a whole millisecond, so that waking at the deadline
        // always finds the tokens there; at most an hour, after which the
        // pollable wakes and check-send answers again.
        let millis = (wait * 1000.0).ceil().min(3_600_000.0) as u64 + 1;
        Err(now + Duration::from_millis(millis))
    }

    /// How many datagrams from the front of a batch with these costs (payload
    /// and headers) the tokens cover now (none when none are left).
    pub(crate) fn admit(&self, costs: impl Iterator<Item = usize>) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refill(&mut state, Instant::now());
        let (mut datagrams, mut bytes) = (state.datagrams, state.bytes);
        let mut admitted = 0;
        for cost in costs {
            if datagrams < 1.0 || bytes <= 0.0 {
                break;
            }
            datagrams -= 1.0;
            bytes -= cost as f64;
            admitted += 1;
        }
        admitted
    }

    /// Takes the tokens of what was sent.
    pub(crate) fn consume(&self, datagrams: u64, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.datagrams -= datagrams as f64;
        state.bytes -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_budget_charges_what_fits() {
        let budget = BufferBudget::new(2500);
        assert!(budget.try_charge(1000));
        assert!(budget.try_charge(1000));
        assert!(!budget.try_charge(1000), "only 500 left");
        assert_eq!(budget.available(), 500);
        budget.replace(1000, 1500);
        assert_eq!(budget.available(), 0);
        budget.release(1500);
        budget.release(1000);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn send_bucket_permits_a_burst_then_waits_for_tokens() {
        let bucket = SendBucket::new(SendRate::datagrams(100));
        // A tenth of a second's worth.
        assert_eq!(bucket.permits(92), Ok(10));
        bucket.consume(10, 920);
        let ready_at = bucket.permits(92).expect_err("empty");
        let wait = ready_at.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_millis(12), "{wait:?}");
        assert!(wait >= Duration::from_millis(5), "{wait:?}");
    }

    #[test]
    fn byte_rates_charge_headers_and_let_one_datagram_overdraw() {
        let bucket = SendBucket::new(SendRate::bytes(10_000));
        // 1000 bytes of tokens: three datagrams of 400 bytes with headers,
        // the last overdrawing.
        assert_eq!(bucket.permits(428), Ok(3));
        assert_eq!(bucket.permits(65_555), Ok(1), "any datagram can go");
        bucket.consume(1, 65_555);
        let ready_at = bucket.permits(28).expect_err("in debt");
        let wait = ready_at.saturating_duration_since(Instant::now());
        assert!(
            wait >= Duration::from_secs(6),
            "waits out the debt: {wait:?}"
        );
        // Empty datagrams are not free: 1000 bytes of tokens cover 36.
        let bucket = SendBucket::new(SendRate::bytes(10_000));
        assert_eq!(bucket.admit([28; 100].into_iter()), 36);
    }

    #[test]
    fn a_batch_is_admitted_as_far_as_the_tokens_go() {
        let bucket = SendBucket::new(SendRate::datagrams(1000).and_bytes(200_000));
        // 100 datagrams' and 20 000 bytes' worth.
        assert_eq!(bucket.admit([10_000; 16].into_iter()), 2);
        assert_eq!(bucket.admit([10; 200].into_iter()), 100);
        // In debt (by what refills in 25 ms): nothing goes.
        bucket.consume(2, 25_000);
        assert_eq!(bucket.admit([10_000; 16].into_iter()), 0);
    }

    #[test]
    fn a_bucket_that_never_refills_waits_an_hour_at_most() {
        let bucket = SendBucket::new(SendRate::datagrams(0).and_bytes(0));
        bucket.consume(1, 65_555);
        let ready_at = bucket.permits(128).expect_err("no tokens");
        let wait = ready_at.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(3601), "{wait:?}");
    }

    #[test]
    fn unlimited_buckets_never_refuse() {
        let bucket = SendBucket::new(SendRate::default());
        assert_eq!(bucket.permits(65_555), Ok(u64::MAX));
        bucket.consume(1_000_000, 1 << 40);
        assert_eq!(bucket.permits(1), Ok(u64::MAX));
    }
}
