//! How much one store's guests may use: sockets, batch sizes, datagram size,
//! socket buffer space and send rate. Every limit has a documented default
//! on [`Limits`] and a method on [`UdpCtxBuilder`](crate::UdpCtxBuilder).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// Most payload bytes per second, if limited.
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

    /// At most `per_second` payload bytes per second.
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

    /// The same rate, also limited to `per_second` payload bytes per second.
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
/// | `max_store_buffers` | [`DEFAULT_MAX_STORE_BUFFERS`] (64 MiB) | the buffer sizes guests set, summed over a store's live sockets, are capped; sockets left at the system default count nothing |
/// | `send_rate` | unlimited | `check-send` returns 0 until tokens return, and its pollable wakes then |
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
    /// Largest send or receive buffer a guest may set on one socket.
    pub max_socket_buffer: usize,
    /// Most buffer space guests may set across a store's live sockets.
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

/// The buffer space guests have set across a store's live sockets.
#[derive(Debug)]
pub(crate) struct BufferBudget {
    per_socket: usize,
    per_store: usize,
    in_use: AtomicUsize,
}

impl BufferBudget {
    pub(crate) fn new(per_socket: usize, per_store: usize) -> Self {
        Self {
            per_socket,
            per_store,
            in_use: AtomicUsize::new(0),
        }
    }

    /// A socket that holds `held` bytes of the budget asks for `wanted`:
    /// returns what it gets (capped by both limits) and now holds.
    pub(crate) fn resize(&self, held: usize, wanted: usize) -> usize {
        let wanted = wanted.min(self.per_socket);
        let mut granted = 0;
        // Never fails: the closure always returns Some.
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                let others = in_use.saturating_sub(held);
                granted = wanted.min(self.per_store.saturating_sub(others));
                Some(others + granted)
            });
        granted
    }

    /// A socket that held `held` bytes is gone.
    pub(crate) fn release(&self, held: usize) {
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                Some(in_use.saturating_sub(held))
            });
    }

    /// Bytes currently set across the store's sockets.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }
}

/// A token bucket for a store's sends. Tokens refill continuously at the
/// configured rates; the bucket holds a tenth of a second's worth (at least
/// one datagram, and at least one datagram of the largest size, so that any
/// datagram can eventually go).
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
            datagrams: Self::capacity(rate.datagrams_per_second, 1.0),
            bytes: Self::capacity(rate.bytes_per_second, MAX_DATAGRAM_SIZE as f64),
            refilled: Instant::now(),
        };
        Self {
            rate,
            state: Mutex::new(state),
        }
    }

    fn capacity(rate: Option<u64>, at_least: f64) -> f64 {
        rate.map_or(f64::INFINITY, |rate| (rate as f64 / 10.0).max(at_least))
    }

    fn refill(&self, state: &mut BucketState, now: Instant) {
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.refilled = now;
        if let Some(rate) = self.rate.datagrams_per_second {
            state.datagrams =
                (state.datagrams + elapsed * rate as f64).min(Self::capacity(Some(rate), 1.0));
        }
        if let Some(rate) = self.rate.bytes_per_second {
            state.bytes = (state.bytes + elapsed * rate as f64)
                .min(Self::capacity(Some(rate), MAX_DATAGRAM_SIZE as f64));
        }
    }

    /// How many datagrams of `payload_len` bytes the tokens allow now, or
    /// when they will allow one.
    pub(crate) fn permits(&self, payload_len: usize) -> Result<u64, Instant> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refill(&mut state, now);
        let payload = (payload_len.max(1) as f64).min(MAX_DATAGRAM_SIZE as f64);
        let by_count = state.datagrams.floor();
        let by_bytes = (state.bytes / payload).floor();
        let permitted = by_count.min(by_bytes);
        if permitted >= 1.0 {
            // Saturating float-to-int conversion: infinity becomes u64::MAX.
            return Ok(permitted as u64);
        }
        let wait_for = |missing: f64, rate: Option<u64>| match rate {
            Some(rate) if missing > 0.0 => missing / rate as f64,
            _ => 0.0,
        };
        let wait = wait_for(1.0 - state.datagrams, self.rate.datagrams_per_second)
            .max(wait_for(payload - state.bytes, self.rate.bytes_per_second));
        // Rounded up to a whole millisecond, so that waking at the deadline
        // always finds the tokens there; at most an hour, after which the
        // pollable wakes and check-send answers again.
        let millis = (wait * 1000.0).ceil().min(3_600_000.0) as u64 + 1;
        Err(now + Duration::from_millis(millis))
    }

    /// How many datagrams from the front of a batch with these payload
    /// lengths the tokens cover now (none when even the first does not fit).
    pub(crate) fn admit(&self, lengths: impl Iterator<Item = usize>) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refill(&mut state, Instant::now());
        let (mut datagrams, mut bytes) = (state.datagrams, state.bytes);
        let mut admitted = 0;
        for len in lengths {
            datagrams -= 1.0;
            bytes -= len as f64;
            if datagrams < 0.0 || bytes < 0.0 {
                break;
            }
            admitted += 1;
        }
        admitted
    }

    /// Takes the tokens of what was sent. A batch larger than its estimate
    /// leaves the bucket in debt, which later permits wait out.
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
    fn buffer_budget_caps_per_socket_and_per_store() {
        let budget = BufferBudget::new(1000, 2500);
        let a = budget.resize(0, 5000);
        assert_eq!(a, 1000, "capped per socket");
        let b = budget.resize(0, 1000);
        assert_eq!(b, 1000);
        let c = budget.resize(0, 1000);
        assert_eq!(c, 500, "what the store has left");
        assert_eq!(budget.resize(0, 1), 0, "nothing left");
        // Shrinking gives back; a socket may grow into what it held.
        let a = budget.resize(a, 200);
        assert_eq!(a, 200);
        assert_eq!(budget.in_use(), 200 + 1000 + 500);
        budget.release(b);
        budget.release(c);
        budget.release(a);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn send_bucket_permits_a_burst_then_waits_for_tokens() {
        let bucket = SendBucket::new(SendRate {
            datagrams_per_second: Some(100),
            bytes_per_second: None,
        });
        // A tenth of a second's worth.
        assert_eq!(bucket.permits(64), Ok(10));
        bucket.consume(10, 640);
        let ready_at = bucket.permits(64).expect_err("empty");
        let wait = ready_at.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_millis(12), "{wait:?}");
        assert!(wait >= Duration::from_millis(5), "{wait:?}");
    }

    #[test]
    fn byte_rate_sizes_permits_by_payload_and_allows_any_datagram() {
        let bucket = SendBucket::new(SendRate {
            datagrams_per_second: None,
            bytes_per_second: Some(10_000),
        });
        // The bucket holds at least one largest datagram.
        assert_eq!(bucket.permits(1000), Ok(65));
        assert_eq!(bucket.permits(65_527), Ok(1));
        bucket.consume(1, 65_527);
        assert!(bucket.permits(1).is_err());
    }

    #[test]
    fn a_batch_is_admitted_as_far_as_the_tokens_go() {
        let bucket = SendBucket::new(SendRate {
            datagrams_per_second: Some(1000),
            bytes_per_second: Some(200_000),
        });
        // 100 datagrams' and 65 527 bytes' worth.
        assert_eq!(bucket.admit([10_000; 16].into_iter()), 6);
        assert_eq!(bucket.admit([10; 200].into_iter()), 100);
        bucket.consume(6, 60_000);
        assert_eq!(bucket.admit([10_000; 16].into_iter()), 0);
    }

    #[test]
    fn a_bucket_that_never_refills_waits_an_hour_at_most() {
        let bucket = SendBucket::new(SendRate {
            datagrams_per_second: Some(0),
            bytes_per_second: Some(0),
        });
        bucket.consume(1, 65_527);
        let ready_at = bucket.permits(100).expect_err("no tokens");
        let wait = ready_at.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(3601), "{wait:?}");
    }

    #[test]
    fn unlimited_buckets_never_refuse() {
        let bucket = SendBucket::new(SendRate::default());
        assert_eq!(bucket.permits(65_527), Ok(u64::MAX));
        bucket.consume(1_000_000, 1 << 40);
        assert_eq!(bucket.permits(1), Ok(u64::MAX));
    }
}
