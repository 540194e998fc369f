//! `incoming-datagram-stream` and `outgoing-datagram-stream`: readiness,
//! `check-send` permits, batched non-blocking `send` and `receive`.
//!
//! Nothing here blocks or spawns: `receive` and `send` do what the kernel can
//! do right now, and the pollables wait on the reactor's readiness.

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
        let mut received = Vec::new();
        let mut discarded = 0;
        while received.len() < max && discarded < MAX_DISCARDS_PER_RECEIVE {
            let (len, source) = match self.core.io.try_receive(buffer) {
                Ok(Some(datagram)) => datagram,
                Ok(None) => break,
                Err(error) if received.is_empty() => {
                    return Err(error_code_from_io(&error, Operation::Receive).into());
                }
                Err(error) => {
                    // The datagrams already taken from the kernel go out now;
                    // the error is the next call's.
                    self.core.defer_error(error);
                    break;
                }
            };
            // WIT: "remote-address: This field is guaranteed to match the
            // remote address the stream was initialized with, if any." A
            // datagram from elsewhere was queued before the association.
            let wanted = self.remote.is_none_or(|remote| remote == source)
                && policy.check(SocketUse::Receive, source).is_ok();
            if !wanted {
                discarded += 1;
                continue;
            }
            received.push(ReceivedDatagram {
                data: buffer[..len].to_vec(),
                source,
            });
        }
        let stats = &self.core.stats;
        UdpStats::add(&stats.datagrams_received, received.len() as u64);
        if discarded > 0 {
            UdpStats::add(&stats.datagrams_filtered, discarded as u64);
            tracing::debug!(
                target: "wasi_udp_host::policy",
                "discarded {discarded} datagrams from sources this stream may not receive from"
            );
        }
        Ok(received)
    }

    /// The object a `subscribe` pollable waits on.
    pub(crate) fn readiness(&self) -> ReceiveReadiness {
        ReceiveReadiness(self.core.clone())
    }
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
