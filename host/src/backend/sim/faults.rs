//! What the simulated network does to datagrams: seeded, so that the same
//! seed and the same sends give the same run.

use std::net::IpAddr;
use std::time::Duration;

use crate::policy::IpNet;

/// The faults a datagram crosses on a link. Probabilities are from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Chance that a datagram is lost.
    pub loss: f64,
    /// Chance that a datagram arrives twice.
    pub duplicate: f64,
    /// Chance that a datagram is held back behind later ones (by up to the
    /// largest delay again, at least a millisecond).
    pub reorder: f64,
    /// Delay, drawn evenly from this range for each datagram.
    pub delay: (Duration, Duration),
    /// Largest packet (payload and IP and UDP headers); larger ones are
    /// dropped.
    pub mtu: Option<usize>,
    /// Most datagrams per second a link carries; more wait their turn in
    /// the sender's buffer.
    pub rate: Option<u64>,
    /// Most payload bytes per second a link carries.
    pub bandwidth: Option<u64>,
    /// Hops between any two nodes: a datagram sent with a smaller hop limit
    /// is dropped.
    pub hops: u8,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

impl Faults {
    /// A perfect network: no loss, no delay, no limits, one hop.
    pub const fn none() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
            mtu: None,
            rate: None,
            bandwidth: None,
            hops: 1,
        }
    }

    /// The same, losing datagrams with `chance`.
    pub fn loss(mut self, chance: f64) -> Self {
        self.loss = chance.clamp(0.0, 1.0);
        self
    }

    /// The same, duplicating datagrams with `chance`.
    pub fn duplicate(mut self, chance: f64) -> Self {
        self.duplicate = chance.clamp(0.0, 1.0);
        self
    }

    /// The same, reordering datagrams with `chance`.
    pub fn reorder(mut self, chance: f64) -> Self {
        self.reorder = chance.clamp(0.0, 1.0);
        self
    }

    /// The same, delaying each datagram by `min` to `max`.
    pub fn delay(mut self, min: Duration, max: Duration) -> Self {
        self.delay = (min.min(max), max.max(min));
        self
    }

    /// The same, with an MTU of `bytes`.
    pub fn mtu(mut self, bytes: usize) -> Self {
        self.mtu = Some(bytes);
        self
    }

    /// The same, carrying at most `per_second` datagrams per link.
    pub fn rate(mut self, per_second: u64) -> Self {
        self.rate = Some(per_second.max(1));
        self
    }

    /// The same, carrying at most `per_second` payload bytes per link.
    pub fn bandwidth(mut self, per_second: u64) -> Self {
        self.bandwidth = Some(per_second.max(1));
        self
    }

    /// The same, with `hops` hops between nodes.
    pub fn hops(mut self, hops: u8) -> Self {
        self.hops = hops;
        self
    }

    /// How long a link is busy with a datagram of `len` bytes.
    pub(super) fn serialization(&self, len: usize) -> Duration {
        let by_rate = self.rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(1.0 / rate as f64)
        });
        let by_bandwidth = self.bandwidth.map_or(Duration::ZERO, |bandwidth| {
            Duration::from_secs_f64(len as f64 / bandwidth as f64)
        });
        by_rate.max(by_bandwidth)
    }

    /// One datagram's delay.
    pub(super) fn delay_for(&self, rng: &mut Rng) -> Duration {
        let (min, max) = self.delay;
        if max <= min {
            return min;
        }
        min + (max - min).mul_f64(rng.unit())
    }

    /// How much longer a reordered datagram is held.
    pub(super) fn reorder_extra(&self, rng: &mut Rng) -> Duration {
        let most = self.delay.1.max(Duration::from_millis(1));
        most.mul_f64(rng.unit()).max(Duration::from_micros(100))
    }
}

/// Two networks that cannot reach each other for a while (from `from` to
/// `until` after the network was made).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// One side.
    pub a: IpNet,
    /// The other side.
    pub b: IpNet,
    /// When it starts.
    pub from: Duration,
    /// When it heals.
    pub until: Duration,
}

impl Partition {
    /// Whether it separates `source` from `destination` at `at`.
    pub(super) fn separates(&self, source: IpAddr, destination: IpAddr, at: Duration) -> bool {
        (self.from..self.until).contains(&at)
            && ((self.a.contains(source) && self.b.contains(destination))
                || (self.b.contains(source) && self.a.contains(destination)))
    }
}

/// SplitMix64: small, fast, and the same sequence from the same seed on
/// every platform.
#[derive(Clone, Debug)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`; draws nothing when `p` is 0, so that a
    /// fault switched off does not shift the others' draws.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}
