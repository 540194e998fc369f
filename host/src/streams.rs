//! `incoming-datagram-stream` and `outgoing-datagram-stream`: readiness,
//! `check-send` permits, batched non-blocking `send` and `receive`, and the
//! per-datagram policy: which destinations a `send` may reach and which
//! sources a `receive` may return.
//!
//! Nothing here blocks or spawns: `receive` and `send` do what the kernel can
//! do right now, and the pollables wait on the reactor's readiness.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;
use wasmtime_wasi_io::poll::Pollable;

use crate::backend::{ReceiveSlots, Received, Transmit};
use crate::ctx::UdpStats;
use crate::error::{
    Code, Operation, UdpError, UdpResult, code_from_io, is_asynchronous_network_error,
};
use crate::limits::MAX_DATAGRAM_SIZE;
use crate::peers::same_peer;
use crate::policy::{Denial, SocketUse};
use crate::report::{DropCause, Limit, Topic};
use crate::socket::{ConnectedPeer, SocketCore, StreamParts, validate_remote};
use crate::stats::SocketStats;

/// How many datagrams from unwanted sources one `receive` call may discard
/// before it returns, so a flood of them cannot keep the guest's call busy.
const MAX_DISCARDS_PER_RECEIVE: usize = 256;

/// The host side of an `incoming-datagram-stream` resource.
pub struct IncomingDatagramStream {
    core: Arc<SocketCore>,
    remote: Option<ConnectedPeer>,
    _lease: Arc<()>,
}

impl std::fmt::Debug for IncomingDatagramStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingDatagramStream")
            .field("remote", &self.remote.map(|peer| peer.addr))
            .finish_non_exhaustive()
    }
}

/// A datagram taken from the kernel for the guest.
pub(crate) struct ReceivedDatagram {
    pub(crate) data: Vec<u8>,
    pub(crate) source: SocketAddr,
}

/// Why a source's datagrams are not for the guest.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub(crate) cause: DropCause,
    /// What the policy said, for the message.
    pub(crate) denial: Option<Denial>,
}

/// Datagrams from one source dropped for one cause, in a row.
#[derive(Debug)]
pub(crate) struct Dropped {
    pub(crate) source: SocketAddr,
    pub(crate) refusal: Refusal,
    pub(crate) count: u64,
    /// The largest of them, in bytes.
    pub(crate) largest: usize,
}

impl IncomingDatagramStream {
    pub(crate) fn new(parts: &StreamParts) -> Self {
        Self {
            core: parts.core.clone(),
            remote: parts.remote,
            _lease: parts.lease.clone(),
        }
    }

    /// `receive`: up to `max` datagrams that are already queued, each copied
    /// out of `slots` once, at its exact size.
    ///
    /// WIT: "This function returns successfully with an empty list when
    /// either: max-results is 0, or: max-results is greater than 0, but no
    /// results are immediately available. This function never returns
    /// error(would-block)."
    pub(crate) fn receive(
        &self,
        max: usize,
        slots: &mut ReceiveSlots,
    ) -> UdpResult<Vec<ReceivedDatagram>> {
        let _in_socket = self.core.span.as_deref().map(tracing::Span::enter);
        if max == 0 {
            return Ok(Vec::new());
        }
        if let Some(error) = self.core.take_deferred_error() {
            return Err(code_from_io(&error, Operation::Receive).into());
        }
        let max_size = self.core.shared.limits.max_datagram_size;
        // Whatever another socket's receive left there is not ours.
        slots.take_kernel_drops();
        let batch = collect_datagrams(
            max,
            slots,
            max_size,
            |source| self.admit(source),
            |slots, max, landed| self.core.io.try_receive_batch(slots, max, landed),
        );
        UdpStats::add(
            &self.core.shared.stats.datagrams_received,
            batch.received.len() as u64,
        );
        let socket_stats = &self.core.stats;
        SocketStats::add(
            &socket_stats.datagrams_received,
            batch.received.len() as u64,
        );
        let bytes: u64 = batch.received.iter().map(|d| d.data.len() as u64).sum();
        SocketStats::add(&socket_stats.bytes_received, bytes);
        UdpStats::add(&self.core.shared.stats.bytes_received, bytes);
        for dropped in &batch.dropped {
            self.report_drop(dropped);
        }
        if let Some(count) = slots.take_kernel_drops() {
            self.core.report_kernel_drops(count);
        }
        match batch.error {
            None => Ok(batch.received),
            Some(error) if batch.received.is_empty() => {
                Err(code_from_io(&error, Operation::Receive).into())
            }
            Some(error) => {
                // The datagrams already taken from the kernel go out now; the
                // error is the next call's.
                self.core.defer_error(error);
                Ok(batch.received)
            }
        }
    }

    /// Whether a datagram from `source` is for the guest.
    fn admit(&self, source: SocketAddr) -> Result<(), Refusal> {
        let policy = &self.core.shared.policy;
        if let Some(peer) = self.remote {
            // WIT: "remote-address: This field is guaranteed to match the
            // remote address the stream was initialized with, if any." A
            // datagram from elsewhere was queued before the association.
            if !same_peer(peer.addr, source) {
                return Err(Refusal {
                    cause: DropCause::NotPeer,
                    denial: None,
                });
            }
            if peer.forbidden {
                return Err(Refusal {
                    cause: DropCause::Forbidden,
                    denial: policy.check(SocketUse::Receive, source).err(),
                });
            }
            return Ok(());
        }
        match policy.check(SocketUse::Receive, source) {
            Ok(()) => Ok(()),
            Err(denial) if denial.is_forbidden() => Err(Refusal {
                cause: DropCause::Forbidden,
                denial: Some(denial),
            }),
            Err(_) if self.core.reply_peers().contains(source) => Ok(()),
            Err(denial) => Err(Refusal {
                cause: DropCause::NotAdmitted,
                denial: Some(denial),
            }),
        }
    }

    /// Counts dropped datagrams and says why, once per cause and source.
    fn report_drop(&self, dropped: &Dropped) {
        let shared = &self.core.shared;
        let stats = &shared.stats;
        let counter = match dropped.refusal.cause {
            DropCause::NotAdmitted => &stats.dropped_not_admitted,
            DropCause::Forbidden => &stats.dropped_forbidden,
            DropCause::NotPeer => &stats.dropped_not_peer,
            DropCause::Oversized => &stats.dropped_oversized,
            DropCause::KernelQueue => &stats.dropped_kernel_queue,
        };
        UdpStats::add(counter, dropped.count);
        self.core
            .stats
            .dropped(dropped.refusal.cause, dropped.count);
        let hints = shared.reporter.hints();
        let topic = Topic::Dropped(dropped.refusal.cause);
        shared
            .reporter
            .report(topic, Some(dropped.source), dropped.count, || {
                let local = match self.core.io.local_addr() {
                    Ok(local) => format!(" on {local}"),
                    Err(_) => String::new(),
                };
                let what = match dropped.count {
                    1 => "a datagram".to_owned(),
                    n => format!("{n} datagrams"),
                };
                let head = format!("dropped {what} from {}{local}", dropped.source);
                let denial = dropped.refusal.denial.as_ref();
                let reason = denial.map(Denial::reason).unwrap_or("refused");
                match dropped.refusal.cause {
                    DropCause::NotAdmitted => {
                        let mut message = format!(
                            "{head}: {reason}, and this socket never sent to it (replies are \
                             admitted only from where it sent)"
                        );
                        if let Some(grant) = denial.and_then(Denial::grant) {
                            message.push_str("; to admit it: ");
                            message.push_str(&hints.grant(grant));
                        }
                        if self.core.reply_peers().is_full() {
                            message.push_str(&format!(
                                " (this socket remembers only the last {} peers it sent to; {})",
                                shared.limits.max_reply_peers,
                                hints.raise(Limit::MaxReplyPeers)
                            ));
                        }
                        message
                    }
                    DropCause::Forbidden => format!("{head}: {reason}"),
                    DropCause::NotPeer => {
                        let peer = self.remote.map(|peer| peer.addr.to_string());
                        format!(
                            "{head}: not the connected peer {} (queued before stream() \
                             connected the socket)",
                            peer.unwrap_or_default()
                        )
                    }
                    DropCause::KernelQueue => format!("{head}: the receive queue was full"),
                    DropCause::Oversized => format!(
                        "{head}: {} bytes, more than max-datagram-size ({}); {}",
                        dropped.largest,
                        shared.limits.max_datagram_size,
                        hints.raise(Limit::MaxDatagramSize)
                    ),
                }
            });
    }

    /// Counts `error` against the stream's socket, if it is an error code.
    pub(crate) fn note(&self, error: UdpError) -> UdpError {
        self.core.note(error)
    }

    /// The object a `subscribe` pollable waits on.
    pub(crate) fn readiness(&self) -> ReceiveReadiness {
        ReceiveReadiness(self.core.clone())
    }
}

/// What one `receive` took from the kernel.
pub(crate) struct ReceivedBatch {
    /// Datagrams for the guest, in arrival order.
    pub(crate) received: Vec<ReceivedDatagram>,
    /// Datagrams taken and dropped, by source and cause.
    pub(crate) dropped: Vec<Dropped>,
    /// The error that ended the batch, if one did.
    pub(crate) error: Option<io::Error>,
}

impl ReceivedBatch {
    fn drop_datagram(&mut self, source: SocketAddr, refusal: &Refusal, len: usize) {
        if let Some(last) = self.dropped.last_mut()
            && last.source == source
            && last.refusal.cause == refusal.cause
        {
            last.count += 1;
            last.largest = last.largest.max(len);
            return;
        }
        self.dropped.push(Dropped {
            source,
            refusal: refusal.clone(),
            count: 1,
            largest: len,
        });
    }

    fn dropped_count(&self) -> usize {
        self.dropped.iter().map(|d| d.count as usize).sum()
    }
}

/// Takes up to `max` wanted datagrams from `next` (a non-blocking batch
/// receive of up to the given count into `slots`, reporting where each one
/// landed), stopping at the first error, when the kernel's queue runs dry, or
/// once [`MAX_DISCARDS_PER_RECEIVE`] unwanted ones (refused by `admit`, or
/// larger than `max_size`) have been dropped. `admit` is asked once per
/// source per run of datagrams from it. Each wanted datagram is copied out of
/// its slot once, at its exact size.
pub(crate) fn collect_datagrams(
    max: usize,
    slots: &mut ReceiveSlots,
    max_size: usize,
    mut admit: impl FnMut(SocketAddr) -> Result<(), Refusal>,
    mut next: impl FnMut(&mut ReceiveSlots, usize, &mut Vec<Received>) -> io::Result<()>,
) -> ReceivedBatch {
    let mut batch = ReceivedBatch {
        received: Vec::new(),
        dropped: Vec::new(),
        error: None,
    };
    let oversized = Refusal {
        cause: DropCause::Oversized,
        denial: None,
    };
    // Reused across receives: nothing is allocated for it per call.
    let mut landed = slots.take_landed();
    // The last source asked about, and the answer.
    let mut verdict: Option<(SocketAddr, Result<(), Refusal>)> = None;
    while batch.received.len() < max && batch.dropped_count() < MAX_DISCARDS_PER_RECEIVE {
        let asked = (max - batch.received.len()).min(slots.count());
        if let Err(error) = next(slots, asked, &mut landed) {
            batch.error = Some(error);
            break;
        }
        for datagram in &landed {
            if datagram.len > max_size {
                batch.drop_datagram(datagram.source, &oversized, datagram.len);
                continue;
            }
            let answer = match &verdict {
                Some((source, answer)) if *source == datagram.source => answer,
                _ => &verdict.insert((datagram.source, admit(datagram.source))).1,
            };
            match answer {
                Ok(()) => batch.received.push(ReceivedDatagram {
                    data: slots.datagram(datagram).to_vec(),
                    source: datagram.source,
                }),
                Err(refusal) => {
                    let refusal = refusal.clone();
                    batch.drop_datagram(datagram.source, &refusal, datagram.len);
                }
            }
        }
        if landed.len() < asked {
            // The queue ran dry: asking again would only cost a syscall.
            break;
        }
    }
    slots.put_landed(landed);
    batch
}

/// The host side of an `outgoing-datagram-stream` resource.
pub struct OutgoingDatagramStream {
    core: Arc<SocketCore>,
    remote: Option<SocketAddr>,
    /// What the last `check-send` permitted, until a `send` spends it.
    permit: Option<u64>,
    _lease: Arc<()>,
}

impl std::fmt::Debug for OutgoingDatagramStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingDatagramStream")
            .field("remote", &self.remote)
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}

impl OutgoingDatagramStream {
    pub(crate) fn new(parts: &StreamParts) -> Self {
        Self {
            core: parts.core.clone(),
            remote: parts.remote.map(|peer| peer.addr),
            permit: None,
            _lease: parts.lease.clone(),
        }
    }

    /// `check-send`: how many datagrams the next `send` may carry.
    ///
    /// WIT: "When this function returns ok(0), the subscribe pollable will
    /// become ready when this function will report at least ok(1), or an
    /// error." Zero only after a send found the kernel's buffer full and the
    /// kernel has not reported room since, or while the store's send rate
    /// is spent; otherwise as many datagrams of the size the stream last
    /// sent as fit the room the kernel promises when it reports a socket
    /// writable, at most the store's `max_send_batch`.
    pub(crate) fn check_send(&mut self) -> UdpResult<u64> {
        let _in_socket = self.core.enter_span();
        if self.core.send_buffer_full.load(Ordering::Relaxed) {
            if !self.core.io.writable_now() {
                self.note_permit(0);
                return Ok(0);
            }
            self.core.send_buffer_full.store(false, Ordering::Relaxed);
        }
        let last_payload_len = self.core.last_payload_len.load(Ordering::Relaxed);
        let max_batch = self.core.shared.limits.max_send_batch;
        // At least one while the network reports room, at most the cap.
        let fit = self.core.io.send_capacity(last_payload_len);
        let mut permitted = u64::try_from(fit)
            .unwrap_or(u64::MAX)
            .clamp(1, max_batch.max(1));
        if let Some(bucket) = &self.core.shared.send_bucket {
            // Spent tokens make this 0; the pollable wakes when they return.
            let cost = last_payload_len + self.core.family.packet_overhead();
            let tokens = bucket.permits(cost).unwrap_or(0);
            if tokens == 0 {
                self.report_rate_stall();
            }
            permitted = permitted.min(tokens);
        }
        self.note_permit(permitted);
        Ok(permitted)
    }

    fn note_permit(&mut self, permitted: u64) {
        self.permit = Some(permitted);
        let (stats, store) = (&self.core.stats, &self.core.shared.stats);
        if permitted == 0 {
            SocketStats::add(&stats.zero_permits, 1);
            UdpStats::add(&store.zero_permits, 1);
        }
        SocketStats::add(&stats.permits_granted, permitted);
        UdpStats::add(&store.permits_granted, permitted);
    }

    fn report_rate_stall(&self) {
        let shared = &self.core.shared;
        UdpStats::add(&shared.stats.send_rate_stalls, 1);
        let hints = shared.reporter.hints();
        let rate = shared.limits.send_rate;
        shared
            .reporter
            .report(Topic::Limit(Limit::SendRate), None, 1, || {
                let mut limits = Vec::new();
                if let Some(n) = rate.datagrams_per_second {
                    limits.push(format!("{n} datagrams/s"));
                }
                if let Some(n) = rate.bytes_per_second {
                    limits.push(format!("{n} bytes/s"));
                }
                format!(
                    "check-send permits nothing until the send rate ({}) allows more; {}",
                    limits.join(", "),
                    hints.raise(Limit::SendRate)
                )
            });
    }

    /// `send`: validates each datagram, then hands the valid prefix of the
    /// batch to the kernel in one go.
    pub(crate) fn send<'a>(
        &mut self,
        datagrams: impl ExactSizeIterator<Item = Transmit<'a>>,
    ) -> UdpResult<u64> {
        let _in_socket = self.core.enter_span();
        // WIT: "Each call to send must be permitted by a preceding check-send.
        // Implementations must trap if either check-send was not called or
        // datagrams contains more items than check-send permitted." A permit
        // is spent by the send it permits, so that holds for send([]) too.
        let Some(permit) = self.permit.take() else {
            return Err(UdpError::trap(
                "outgoing-datagram-stream.send called without a preceding check-send",
            ));
        };
        let count = datagrams.len();
        if count as u64 > permit {
            return Err(UdpError::trap(format!(
                "outgoing-datagram-stream.send of {count} datagrams, but check-send permitted {permit}"
            )));
        }
        if count == 0 {
            // WIT: "If the input list is empty, the function returns ok(0)."
            return Ok(0);
        }
        if let Some(error) = self.core.take_deferred_error() {
            return Err(code_from_io(&error, Operation::Send).into());
        }

        // WIT: "This function semantically behaves the same as iterating the
        // datagrams list and sequentially sending each individual datagram
        // until either the end of the list has been reached or the first
        // error occurred." So: the valid prefix goes to the kernel, and the
        // first invalid datagram is the error if nothing before it was sent.
        // Most sends carry a datagram or a few: those need no allocation.
        let mut transmits: SmallVec<[Transmit<'a>; 8]> = SmallVec::with_capacity(count);
        let mut first_invalid = None;
        // The policy is asked once per destination per call; the
        // destinations it allowed become reply peers.
        let mut allowed: Vec<SocketAddr> = Vec::new();
        for datagram in datagrams {
            let checked = self
                .validate(datagram.destination, &mut allowed)
                .and_then(|destination| self.check_size(datagram.payload.len(), destination));
            match checked {
                Ok(destination) => transmits.push(Transmit {
                    destination,
                    payload: datagram.payload,
                }),
                Err(error) => {
                    first_invalid = Some(error);
                    break;
                }
            }
        }
        if !allowed.is_empty() {
            let mut peers = self.core.reply_peers();
            for destination in allowed {
                peers.note(destination);
            }
        }
        if let Some(largest) = transmits.iter().map(|t| t.payload.len()).max() {
            self.core.last_payload_len.store(largest, Ordering::Relaxed);
        }
        // The store's send rate may cover only part of the batch; a send
        // that sends fewer than asked is what the guest handles anyway.
        let overhead = self.core.family.packet_overhead();
        let admitted = match &self.core.shared.send_bucket {
            Some(bucket) => bucket.admit(transmits.iter().map(|t| t.payload.len() + overhead)),
            None => transmits.len(),
        };
        if admitted < transmits.len() {
            transmits.truncate(admitted);
            first_invalid = None;
        }
        let outcome = self.core.io.try_send_batch(&transmits);
        if outcome.buffer_full {
            self.core.send_buffer_full.store(true, Ordering::Relaxed);
        }
        if let Some(bucket) = &self.core.shared.send_bucket {
            let bytes = transmits[..outcome.sent]
                .iter()
                .map(|t| (t.payload.len() + overhead) as u64)
                .sum();
            bucket.consume(outcome.sent as u64, bytes);
        }
        UdpStats::add(&self.core.shared.stats.datagrams_sent, outcome.sent as u64);
        SocketStats::add(&self.core.stats.datagrams_sent, outcome.sent as u64);
        let bytes: u64 = transmits[..outcome.sent]
            .iter()
            .map(|t| t.payload.len() as u64)
            .sum();
        SocketStats::add(&self.core.stats.bytes_sent, bytes);
        UdpStats::add(&self.core.shared.stats.bytes_sent, bytes);
        if outcome.sent > 0 {
            // WIT: "If at least one datagram has been sent successfully, this
            // function never returns an error." An ICMP report the kernel
            // handed over is kept for the next call instead of being lost.
            if let Some(error) = outcome.error
                && is_asynchronous_network_error(&error)
            {
                self.core.defer_error(error);
            }
            return Ok(outcome.sent as u64);
        }
        match (outcome.error, first_invalid) {
            (Some(error), _) => Err(code_from_io(&error, Operation::Send).into()),
            (None, Some(invalid)) if transmits.is_empty() => Err(invalid),
            // The send buffer is full: nothing sent, no error.
            (None, _) => Ok(0),
        }
    }

    /// Where one datagram goes, or why it may not. `allowed` holds the
    /// destinations the policy allowed in this call.
    fn validate(
        &self,
        destination: Option<SocketAddr>,
        allowed: &mut Vec<SocketAddr>,
    ) -> UdpResult<Option<SocketAddr>> {
        match (self.remote, destination) {
            // Connected: send to the peer, which the policy allowed sending
            // to at `stream`.
            (Some(_), None) => Ok(None),
            // WIT: "invalid-argument: The socket is in "connected" mode and
            // remote-address is some value that does not match the address
            // passed to stream. (EISCONN)"
            (Some(remote), Some(destination)) if same_peer(remote, destination) => Ok(None),
            (Some(_), Some(_)) => Err(Code::InvalidArgument.into()),
            // WIT: "invalid-argument: The socket is not "connected" and no
            // value for remote-address was provided. (EDESTADDRREQ)"
            (None, None) => Err(Code::InvalidArgument.into()),
            (None, Some(destination)) if allowed.contains(&destination) => Ok(Some(destination)),
            (None, Some(destination)) => {
                validate_remote(self.core.family, &destination)?;
                let policy = &self.core.shared.policy;
                let send = policy.check(SocketUse::Send, destination);
                // A group or a broadcast address needs its own use too;
                // each refused use is said, with the rule that grants it.
                let may_broadcast = self.core.broadcast_enabled.load(Ordering::Relaxed);
                let extra =
                    crate::socket::destination_use(&self.core.shared, &destination, may_broadcast)
                        .map(|extra| (extra, policy.check(extra, destination)));
                let mut refused = None;
                if let Err(denial) = send {
                    refused = Some(self.core.refuse(SocketUse::Send, destination, &denial));
                }
                if let Some((extra, Err(denial))) = extra {
                    refused = Some(self.core.refuse(extra, destination, &denial));
                }
                if let Some(refused) = refused {
                    return Err(refused);
                }
                allowed.push(destination);
                Ok(Some(destination))
            }
        }
    }

    /// WIT: "datagram-too-large: The datagram is too large. (EMSGSIZE)" The
    /// store's limit is checked like the protocol's, before any syscall.
    fn check_size(
        &self,
        len: usize,
        destination: Option<SocketAddr>,
    ) -> UdpResult<Option<SocketAddr>> {
        let shared = &self.core.shared;
        let max = shared.limits.max_datagram_size;
        if len <= max {
            return Ok(destination);
        }
        if max < MAX_DATAGRAM_SIZE {
            let hints = shared.reporter.hints();
            shared
                .reporter
                .report(Topic::Limit(Limit::MaxDatagramSize), None, 1, || {
                    format!(
                        "a send of {len} bytes is datagram-too-large: more than \
                         max-datagram-size ({max}); {}",
                        hints.raise(Limit::MaxDatagramSize)
                    )
                });
        }
        Err(Code::DatagramTooLarge.into())
    }

    /// Counts `error` against the stream's socket, if it is an error code.
    pub(crate) fn note(&self, error: UdpError) -> UdpError {
        self.core.note(error)
    }

    /// The object a `subscribe` pollable waits on.
    pub(crate) fn readiness(&self) -> SendReadiness {
        SendReadiness(self.core.clone())
    }
}

/// What an incoming stream's pollable waits on. Owned by the pollable rather
/// than borrowed from the stream, so the stream may be dropped (and the
/// socket re-streamed) while pollables are still alive.
pub(crate) struct ReceiveReadiness(Arc<SocketCore>);

#[wasmtime_wasi_io::async_trait]
impl Pollable for ReceiveReadiness {
    async fn ready(&mut self) {
        // Ready at once when an error waits for the next call; otherwise
        // the backend asks the kernel before it waits on the reactor.
        if self.0.has_deferred_error() {
            return;
        }
        self.0.io.receive_ready().await;
    }
}

/// What an outgoing stream's pollable waits on; see [`ReceiveReadiness`].
pub(crate) struct SendReadiness(Arc<SocketCore>);

#[wasmtime_wasi_io::async_trait]
impl Pollable for SendReadiness {
    async fn ready(&mut self) {
        // Ready exactly when check-send would permit at least one datagram:
        // at once unless the last send found the buffer full or the store's
        // send tokens are spent.
        if self.0.send_buffer_full.load(Ordering::Relaxed) {
            self.0.io.send_ready().await;
        }
        if let Some(bucket) = &self.0.shared.send_bucket {
            let cost =
                self.0.last_payload_len.load(Ordering::Relaxed) + self.0.family.packet_overhead();
            while let Err(ready_at) = bucket.permits(cost) {
                tokio::time::sleep_until(ready_at).await;
            }
        }
    }
}

/// A pollable that is always ready: `udp-socket.subscribe`, whose only
/// asynchronous operation (bind) completes within `start-bind`.
pub(crate) struct AlwaysReady;

#[wasmtime_wasi_io::async_trait]
impl Pollable for AlwaysReady {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RuleSet, UdpPolicy};
    use std::collections::VecDeque;

    fn everyone(_: SocketAddr) -> Result<(), Refusal> {
        Ok(())
    }

    /// Admits what `policy` allows to be received.
    fn by_policy(policy: &dyn UdpPolicy) -> impl FnMut(SocketAddr) -> Result<(), Refusal> + '_ {
        move |source| {
            policy
                .check(SocketUse::Receive, source)
                .map_err(|denial| Refusal {
                    cause: DropCause::NotAdmitted,
                    denial: Some(denial),
                })
        }
    }

    type Step = io::Result<Option<(&'static [u8], &'static str)>>;

    /// A batch receive that replays `steps` the way recvmmsg would: as many
    /// datagrams as asked for, stopping early at "nothing queued" (`None`)
    /// or before an error, which the next call then returns.
    fn scripted(
        steps: Vec<Step>,
    ) -> impl FnMut(&mut ReceiveSlots, usize, &mut Vec<Received>) -> io::Result<()> {
        let mut steps: VecDeque<Step> = steps.into();
        move |slots, asked, landed| {
            landed.clear();
            while landed.len() < asked {
                match steps.front() {
                    None | Some(Ok(None)) => {
                        steps.pop_front();
                        break;
                    }
                    Some(Err(_)) if !landed.is_empty() => break,
                    Some(Err(_)) => match steps.pop_front() {
                        Some(Err(error)) => return Err(error),
                        _ => unreachable!("the front was an error"),
                    },
                    Some(Ok(Some((data, source)))) => {
                        let slot = landed.len();
                        let buffer = slots.slots_mut(slot + 1).nth(slot).expect("slot");
                        buffer[..data.len()].copy_from_slice(data);
                        landed.push(Received {
                            offset: 0,
                            slot,
                            len: data.len(),
                            source: source.parse().expect("source"),
                        });
                        steps.pop_front();
                    }
                }
            }
            Ok(())
        }
    }

    fn refused() -> io::Error {
        io::Error::from_raw_os_error(rustix::io::Errno::CONNREFUSED.raw_os_error())
    }

    #[test]
    fn an_error_after_datagrams_is_the_next_batch_and_is_not_lost() {
        let mut slots = ReceiveSlots::new(2);
        let steps = vec![
            Ok(Some((&b"one"[..], "127.0.0.1:9"))),
            Ok(Some((&b"two"[..], "127.0.0.1:9"))),
            Ok(Some((&b"two and a half"[..], "127.0.0.1:9"))),
            Err(refused()),
            Ok(Some((&b"three"[..], "127.0.0.1:9"))),
        ];
        let mut next = scripted(steps);
        let batch = collect_datagrams(10, &mut slots, MAX_DATAGRAM_SIZE, everyone, &mut next);
        let data: Vec<&[u8]> = batch.received.iter().map(|d| &d.data[..]).collect();
        assert_eq!(data, [&b"one"[..], b"two", b"two and a half"]);
        assert!(batch.error.is_none());

        let batch = collect_datagrams(10, &mut slots, MAX_DATAGRAM_SIZE, everyone, &mut next);
        assert!(batch.received.is_empty());
        let error = batch.error.expect("the error comes with the next batch");
        assert_eq!(error.raw_os_error(), refused().raw_os_error());

        let batch = collect_datagrams(10, &mut slots, MAX_DATAGRAM_SIZE, everyone, &mut next);
        assert_eq!(batch.received[0].data, b"three");
    }

    #[test]
    fn datagrams_are_copied_at_their_exact_size_up_to_max() {
        let mut slots = ReceiveSlots::new(4);
        let steps = vec![
            Ok(Some((&b""[..], "127.0.0.1:9"))),
            Ok(Some((&b"ab"[..], "127.0.0.1:9"))),
            Ok(Some((&b"cde"[..], "127.0.0.1:9"))),
        ];
        let batch = collect_datagrams(2, &mut slots, MAX_DATAGRAM_SIZE, everyone, scripted(steps));
        assert_eq!(batch.received.len(), 2);
        assert_eq!(batch.received[0].data, b"");
        assert_eq!(batch.received[1].data, b"ab");
        assert!(batch.error.is_none());
    }

    #[test]
    fn a_receive_larger_than_the_slots_takes_several_batches() {
        let mut slots = ReceiveSlots::new(2);
        let steps: Vec<Step> = (0..5)
            .map(|_| Ok(Some((&b"x"[..], "127.0.0.1:9"))))
            .collect();
        let calls = std::cell::Cell::new(0);
        let mut next = scripted(steps);
        let batch = collect_datagrams(
            10,
            &mut slots,
            MAX_DATAGRAM_SIZE,
            everyone,
            |slots, asked, landed| {
                calls.set(calls.get() + 1);
                next(slots, asked, landed)
            },
        );
        assert_eq!(batch.received.len(), 5);
        // 2 + 2 + 1: the short third batch shows the queue is dry, so no
        // fourth call is made.
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn unwanted_sources_are_dropped_and_counted_by_source_and_cause() {
        let mut slots = ReceiveSlots::new(4);
        let steps = vec![
            Ok(Some((&b"outside"[..], "10.0.0.1:9"))),
            Ok(Some((&b"outside again"[..], "10.0.0.1:9"))),
            Ok(Some((&b"inside"[..], "127.0.0.1:9"))),
            Ok(Some((&b"outside, later"[..], "10.0.0.1:9"))),
        ];
        let rules = RuleSet::loopback();
        let asked = std::cell::Cell::new(0);
        let mut admit = by_policy(&rules);
        let batch = collect_datagrams(
            10,
            &mut slots,
            MAX_DATAGRAM_SIZE,
            |source| {
                asked.set(asked.get() + 1);
                admit(source)
            },
            scripted(steps),
        );
        assert_eq!(batch.received.len(), 1);
        assert_eq!(batch.received[0].data, b"inside");
        let dropped: Vec<(String, u64)> = batch
            .dropped
            .iter()
            .map(|d| (d.source.to_string(), d.count))
            .collect();
        // Drops from one source in a row are one record, admitted
        // datagrams between them notwithstanding.
        assert_eq!(dropped, [("10.0.0.1:9".to_owned(), 3)]);
        let grant = batch.dropped[0]
            .refusal
            .denial
            .as_ref()
            .and_then(Denial::grant);
        assert_eq!(
            grant.map(|rule| rule.spec()).as_deref(),
            Some("receive:10.0.0.1")
        );
        // Once per run of datagrams from one source, not once per datagram.
        assert_eq!(asked.get(), 3);
    }

    #[test]
    fn oversized_datagrams_are_dropped_with_their_size() {
        let mut slots = ReceiveSlots::new(4);
        let steps = vec![
            Ok(Some((&b"0123456789"[..], "127.0.0.1:9"))),
            Ok(Some((&b"0123"[..], "127.0.0.1:9"))),
        ];
        let batch = collect_datagrams(10, &mut slots, 5, everyone, scripted(steps));
        assert_eq!(batch.received.len(), 1);
        assert_eq!(batch.dropped.len(), 1);
        assert_eq!(batch.dropped[0].refusal.cause, DropCause::Oversized);
        assert_eq!(batch.dropped[0].largest, 10);
    }

    #[test]
    fn a_flood_of_unwanted_datagrams_cannot_keep_a_receive_busy() {
        let mut slots = ReceiveSlots::new(4);
        let calls = std::cell::Cell::new(0);
        let batch = collect_datagrams(
            10,
            &mut slots,
            MAX_DATAGRAM_SIZE,
            by_policy(&crate::policy::DenyAll),
            |slots, asked, landed| {
                calls.set(calls.get() + 1);
                landed.clear();
                for (slot, buffer) in slots.slots_mut(asked).enumerate() {
                    buffer[0] = 1;
                    let source = "127.0.0.1:9".parse().expect("addr");
                    landed.push(Received {
                        offset: 0,
                        slot,
                        len: 1,
                        source,
                    });
                }
                Ok(())
            },
        );
        assert!(batch.received.is_empty());
        assert_eq!(batch.dropped_count(), MAX_DISCARDS_PER_RECEIVE);
        assert_eq!(calls.get(), MAX_DISCARDS_PER_RECEIVE / 4);
    }
}
