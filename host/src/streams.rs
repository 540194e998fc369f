//! `incoming-datagram-stream` and `outgoing-datagram-stream`: readiness,
//! `check-send` permits, batched non-blocking `send` and `receive`.
//!
//! Nothing here blocks or spawns: `receive` and `send` do what the kernel can
//! do right now, and the pollables wait on the reactor's readiness.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use wasmtime_wasi_io::poll::Pollable;

use crate::backend::Transmit;
use crate::bindings::ErrorCode;
use crate::ctx::UdpStats;
use crate::error::{
    Operation, SocketError, SocketResult, error_code_from_io, is_asynchronous_network_error,
};
use crate::policy::{SocketUse, UdpPolicy};
use crate::socket::{SocketCore, StreamParts, check_policy, validate_remote};

/// How many datagrams from unwanted sources one `receive` call may discard
/// before it returns, so a flood of them cannot keep the guest's call busy.
const MAX_DISCARDS_PER_RECEIVE: usize = 256;

/// The host side of an `incoming-datagram-stream` resource.
pub struct IncomingDatagramStream {
    core: Arc<SocketCore>,
    remote: Option<SocketAddr>,
    _lease: Arc<()>,
}

/// A datagram taken from the kernel for the guest.
pub(crate) struct ReceivedDatagram {
    pub data: Vec<u8>,
    pub source: SocketAddr,
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
    /// out of `buffer` at its exact size.
    ///
    /// WIT: "This function returns successfully with an empty list when
    /// either: max-results is 0, or: max-results is greater than 0, but no
    /// results are immediately available. This function never returns
    /// error(would-block)."
    pub(crate) fn receive(
        &self,
        max: usize,
        buffer: &mut [u8],
        policy: &dyn UdpPolicy,
    ) -> SocketResult<Vec<ReceivedDatagram>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if let Some(error) = self.core.take_deferred_error() {
            return Err(error_code_from_io(&error, Operation::Receive).into());
        }
        let batch = collect_datagrams(max, buffer, self.remote, policy, |buffer| {
            self.core.io.try_receive(buffer)
        });
        let stats = &self.core.stats;
        UdpStats::add(&stats.datagrams_received, batch.received.len() as u64);
        if batch.discarded > 0 {
            UdpStats::add(&stats.datagrams_filtered, batch.discarded as u64);
            tracing::debug!(
                target: "wasi_udp_host::policy",
                "discarded {} datagrams from sources this stream may not receive from",
                batch.discarded
            );
        }
        match batch.error {
            None => Ok(batch.received),
            Some(error) if batch.received.is_empty() => {
                Err(error_code_from_io(&error, Operation::Receive).into())
            }
            Some(error) => {
                // The datagrams already taken from the kernel go out now; the
                // error is the next call's.
                self.core.defer_error(error);
                Ok(batch.received)
            }
        }
    }

    /// The object a `subscribe` pollable waits on.
    pub(crate) fn readiness(&self) -> ReceiveReadiness {
        ReceiveReadiness(self.core.clone())
    }
}

/// What one `receive` took from the kernel.
pub(crate) struct ReceivedBatch {
    /// Datagrams for the guest, in arrival order.
    pub received: Vec<ReceivedDatagram>,
    /// Datagrams taken and dropped: from a source other than the stream's
    /// remote address, or one the policy refuses.
    pub discarded: usize,
    /// The error that ended the batch, if one did.
    pub error: Option<io::Error>,
}

/// Takes up to `max` wanted datagrams from `next` (a non-blocking receive
/// into the buffer it is given), stopping at the first error, when nothing
/// more is queued, or after [`MAX_DISCARDS_PER_RECEIVE`] unwanted ones.
/// Each datagram is copied out of `buffer` once, at its exact size.
pub(crate) fn collect_datagrams(
    max: usize,
    buffer: &mut [u8],
    remote: Option<SocketAddr>,
    policy: &dyn UdpPolicy,
    mut next: impl FnMut(&mut [u8]) -> io::Result<Option<(usize, SocketAddr)>>,
) -> ReceivedBatch {
    let mut batch = ReceivedBatch {
        received: Vec::new(),
        discarded: 0,
        error: None,
    };
    while batch.received.len() < max && batch.discarded < MAX_DISCARDS_PER_RECEIVE {
        let (len, source) = match next(buffer) {
            Ok(Some(datagram)) => datagram,
            Ok(None) => break,
            Err(error) => {
                batch.error = Some(error);
                break;
            }
        };
        // WIT: "remote-address: This field is guaranteed to match the remote
        // address the stream was initialized with, if any." A datagram from
        // elsewhere was queued before the association.
        let wanted = remote.is_none_or(|remote| remote == source)
            && policy.check(SocketUse::Receive, source).is_ok();
        if wanted {
            batch.received.push(ReceivedDatagram {
                data: buffer[..len].to_vec(),
                source,
            });
        } else {
            batch.discarded += 1;
        }
    }
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

impl OutgoingDatagramStream {
    pub(crate) fn new(parts: &StreamParts) -> Self {
        Self {
            core: parts.core.clone(),
            remote: parts.remote,
            permit: None,
            _lease: parts.lease.clone(),
        }
    }

    /// `check-send`: how many datagrams the next `send` may carry.
    ///
    /// WIT: "When this function returns ok(0), the subscribe pollable will
    /// become ready when this function will report at least ok(1), or an
    /// error." Both use the reactor's view of writability.
    pub(crate) fn check_send(&mut self, max_batch: u64) -> SocketResult<u64> {
        let permitted = match self.core.io.poll_send_ready_now() {
            Poll::Ready(Ok(())) => max_batch,
            Poll::Ready(Err(error)) => {
                self.permit = None;
                return Err(error_code_from_io(&error, Operation::Send).into());
            }
            Poll::Pending => 0,
        };
        self.permit = Some(permitted);
        Ok(permitted)
    }

    /// `send`: validates each datagram, then hands the valid prefix of the
    /// batch to the kernel in one go.
    pub(crate) fn send<'a>(
        &mut self,
        datagrams: impl ExactSizeIterator<Item = Transmit<'a>>,
        policy: &dyn UdpPolicy,
    ) -> SocketResult<u64> {
        // WIT: "Each call to send must be permitted by a preceding check-send.
        // Implementations must trap if either check-send was not called or
        // datagrams contains more items than check-send permitted." A permit
        // is spent by the send it permits, so that holds for send([]) too.
        let Some(permit) = self.permit.take() else {
            return Err(SocketError::trap(
                "outgoing-datagram-stream.send called without a preceding check-send",
            ));
        };
        let count = datagrams.len();
        if count as u64 > permit {
            return Err(SocketError::trap(format!(
                "outgoing-datagram-stream.send of {count} datagrams, but check-send permitted {permit}"
            )));
        }
        if count == 0 {
            // WIT: "If the input list is empty, the function returns ok(0)."
            return Ok(0);
        }
        if let Some(error) = self.core.take_deferred_error() {
            return Err(error_code_from_io(&error, Operation::Send).into());
        }

        // WIT: "This function semantically behaves the same as iterating the
        // datagrams list and sequentially sending each individual datagram
        // until either the end of the list has been reached or the first
        // error occurred." So: the valid prefix goes to the kernel, and the
        // first invalid datagram is the error if nothing before it was sent.
        let mut transmits = Vec::with_capacity(count);
        let mut first_invalid = None;
        for datagram in datagrams {
            match self.validate(datagram.destination, policy) {
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
        let outcome = self.core.io.try_send_batch(&transmits);
        UdpStats::add(&self.core.stats.datagrams_sent, outcome.sent as u64);
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
            (Some(error), _) => Err(error_code_from_io(&error, Operation::Send).into()),
            (None, Some(invalid)) if transmits.is_empty() => Err(invalid),
            // The send buffer is full: nothing sent, no error.
            (None, _) => Ok(0),
        }
    }

    /// Where one datagram goes, or why it may not.
    fn validate(
        &self,
        destination: Option<SocketAddr>,
        policy: &dyn UdpPolicy,
    ) -> SocketResult<Option<SocketAddr>> {
        match (self.remote, destination) {
            // Connected: send to the peer, whose policy check ran at `stream`.
            (Some(_), None) => Ok(None),
            // WIT: "invalid-argument: The socket is in "connected" mode and
            // remote-address is some value that does not match the address
            // passed to stream. (EISCONN)"
            (Some(remote), Some(destination)) if remote == destination => Ok(None),
            (Some(_), Some(_)) => Err(ErrorCode::InvalidArgument.into()),
            // WIT: "invalid-argument: The socket is not "connected" and no
            // value for remote-address was provided. (EDESTADDRREQ)"
            (None, None) => Err(ErrorCode::InvalidArgument.into()),
            (None, Some(destination)) => {
                validate_remote(self.core.family, &destination)?;
                check_policy(policy, &self.core.stats, SocketUse::Send, destination)?;
                Ok(Some(destination))
            }
        }
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
        self.0.io.send_ready().await;
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
    use crate::policy::{AllowAll, AllowList};

    type Step = io::Result<Option<(&'static [u8], &'static str)>>;

    /// A receive that replays `steps`, then reports nothing queued.
    fn scripted(
        steps: Vec<Step>,
    ) -> impl FnMut(&mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        let mut steps = steps.into_iter();
        move |buffer| match steps.next() {
            None => Ok(None),
            Some(Err(error)) => Err(error),
            Some(Ok(None)) => Ok(None),
            Some(Ok(Some((data, source)))) => {
                buffer[..data.len()].copy_from_slice(data);
                Ok(Some((data.len(), source.parse().expect("source"))))
            }
        }
    }

    fn refused() -> io::Error {
        io::Error::from_raw_os_error(rustix::io::Errno::CONNREFUSED.raw_os_error())
    }

    #[test]
    fn an_error_after_datagrams_ends_the_batch_and_is_kept() {
        let mut buffer = vec![0; 64];
        let steps = vec![
            Ok(Some((&b"one"[..], "127.0.0.1:9"))),
            Ok(Some((&b"two"[..], "127.0.0.1:9"))),
            Err(refused()),
            Ok(Some((&b"three"[..], "127.0.0.1:9"))),
        ];
        let batch = collect_datagrams(10, &mut buffer, None, &AllowAll, scripted(steps));
        let data: Vec<&[u8]> = batch.received.iter().map(|d| &d.data[..]).collect();
        assert_eq!(data, [&b"one"[..], b"two"]);
        let error = batch.error.expect("the error is returned with the batch");
        assert_eq!(error.raw_os_error(), refused().raw_os_error());
    }

    #[test]
    fn datagrams_are_copied_at_their_exact_size_up_to_max() {
        let mut buffer = vec![0xff; 64];
        let steps = vec![
            Ok(Some((&b""[..], "127.0.0.1:9"))),
            Ok(Some((&b"ab"[..], "127.0.0.1:9"))),
            Ok(Some((&b"cde"[..], "127.0.0.1:9"))),
        ];
        let batch = collect_datagrams(2, &mut buffer, None, &AllowAll, scripted(steps));
        assert_eq!(batch.received.len(), 2);
        assert_eq!(batch.received[0].data, b"");
        assert_eq!(batch.received[1].data, b"ab");
        assert!(batch.error.is_none());
    }

    #[test]
    fn unwanted_sources_are_discarded_and_counted() {
        let mut buffer = vec![0; 64];
        let peer: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let steps = vec![
            Ok(Some((&b"stranger"[..], "127.0.0.1:10"))),
            Ok(Some((&b"peer"[..], "127.0.0.1:9"))),
            Ok(Some((&b"refused source"[..], "10.0.0.1:9"))),
        ];
        let batch = collect_datagrams(10, &mut buffer, Some(peer), &AllowAll, scripted(steps));
        assert_eq!(batch.received.len(), 1);
        assert_eq!(batch.received[0].data, b"peer");
        assert_eq!(batch.discarded, 2);

        let steps = vec![
            Ok(Some((&b"outside"[..], "10.0.0.1:9"))),
            Ok(Some((&b"inside"[..], "127.0.0.1:9"))),
        ];
        let batch = collect_datagrams(
            10,
            &mut buffer,
            None,
            &AllowList::loopback(),
            scripted(steps),
        );
        assert_eq!(batch.received.len(), 1);
        assert_eq!(batch.discarded, 1);
    }

    #[test]
    fn a_flood_of_unwanted_datagrams_cannot_keep_a_receive_busy() {
        let mut buffer = vec![0; 64];
        let calls = std::cell::Cell::new(0);
        let batch = collect_datagrams(10, &mut buffer, None, &crate::policy::DenyAll, |buffer| {
            calls.set(calls.get() + 1);
            buffer[0] = 1;
            Ok(Some((1, "127.0.0.1:9".parse().expect("addr"))))
        });
        assert!(batch.received.is_empty());
        assert_eq!(batch.discarded, MAX_DISCARDS_PER_RECEIVE);
        assert_eq!(calls.get(), MAX_DISCARDS_PER_RECEIVE);
    }
}
