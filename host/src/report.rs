//! What the provider tells the host about what it refused, dropped or
//! capped: each event in full the first time per cause and peer, then a
//! count now and then, so that a guest looping on a refused call, or a
//! flood from a refused source, cannot flood the log.
//!
//! Refusals, dropped datagrams and limits are warnings (targets
//! `wasi_udp_host::policy` and `wasi_udp_host::limits`), so they show at
//! the usual default log level; each says what would grant or raise it, in
//! the embedder's terms ([`Hints`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::policy::{Rule, SocketUse};

/// How the provider's messages name what would grant a refused operation or
/// raise a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hints {
    /// As [`UdpCtxBuilder`](crate::UdpCtxBuilder) calls:
    /// `UdpCtxBuilder::allow("send:10.0.0.53:53")`, `UdpCtxBuilder::max_sockets`.
    #[default]
    Builder,
    /// As `wasi-udp` command-line flags: `--allow send:10.0.0.53:53`,
    /// `--max-sockets N`.
    CliFlags,
}

impl Hints {
    /// How to grant what `rule` covers.
    pub(crate) fn grant(self, rule: &Rule) -> String {
        let spec = rule.spec();
        match self {
            Self::Builder => format!("UdpCtxBuilder::allow(\"{spec}\")"),
            // Brackets are glob characters to a shell.
            Self::CliFlags if spec.contains('[') => format!("--allow '{spec}'"),
            Self::CliFlags => format!("--allow {spec}"),
        }
    }

    /// How to let names resolve through the system's resolver.
    pub(crate) fn allow_name_lookup(self) -> &'static str {
        match self {
            Self::Builder => {
                "UdpCtxBuilder::name_lookup(NameLookup::local().system_resolver(true))"
            }
            Self::CliFlags => "--allow-name-lookup",
        }
    }

    /// How to raise `limit`.
    pub(crate) fn raise(self, limit: Limit) -> String {
        match (self, limit) {
            (_, Limit::Descriptors) => {
                "raise the process's descriptor limit (`ulimit -n`, RLIMIT_NOFILE)".into()
            }
            (Self::Builder, limit) => format!("raise it with UdpCtxBuilder::{}", limit.builder()),
            (Self::CliFlags, limit) => format!("raise it with --{} {}", limit.flag(), limit.unit()),
        }
    }
}

/// A limit the provider enforces, as named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Limit {
    MaxSockets,
    /// The process's own descriptor limit, not the store's.
    Descriptors,
    MaxDatagramSize,
    MaxSocketBuffer,
    MaxStoreBuffers,
    SendRate,
    MaxReplyPeers,
}

impl Limit {
    /// The CLI flag and policy-file key.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Self::MaxSockets => "max-sockets",
            Self::Descriptors => "ulimit -n",
            Self::MaxDatagramSize => "max-datagram-size",
            Self::MaxSocketBuffer => "max-socket-buffer",
            Self::MaxStoreBuffers => "max-store-buffers",
            Self::SendRate => "send-rate",
            Self::MaxReplyPeers => "max-reply-peers",
        }
    }

    fn builder(self) -> &'static str {
        match self {
            Self::MaxSockets => "max_sockets",
            Self::Descriptors => "",
            Self::MaxDatagramSize => "max_datagram_size",
            Self::MaxSocketBuffer => "max_socket_buffer",
            Self::MaxStoreBuffers => "max_store_buffers",
            Self::SendRate => "send_rate",
            Self::MaxReplyPeers => "max_reply_peers",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::MaxSockets | Self::MaxReplyPeers | Self::Descriptors => "N",
            Self::MaxDatagramSize | Self::MaxSocketBuffer | Self::MaxStoreBuffers => "BYTES",
            Self::SendRate => "N (or --send-bytes-rate BYTES)",
        }
    }
}

/// Why a received datagram was dropped instead of returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DropCause {
    /// No rule admits the source, and it is not a reply to the socket.
    NotAdmitted,
    /// A deny rule refuses the source.
    Forbidden,
    /// Not from the connected peer: queued before `stream` connected.
    NotPeer,
    /// Larger than the store's `max_datagram_size`.
    Oversized,
    /// Dropped by the kernel: the socket's receive queue was full.
    KernelQueue,
}

impl DropCause {
    fn describe(self) -> &'static str {
        match self {
            Self::NotAdmitted => "from sources no rule admits",
            Self::Forbidden => "from sources a deny rule refuses",
            Self::NotPeer => "from other than the connected peer",
            Self::Oversized => "larger than max-datagram-size",
            Self::KernelQueue => "by the kernel for a full receive queue",
        }
    }
}

/// What an event is about: events of one topic share a throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    Denied(SocketUse),
    NameLookupRefused,
    Dropped(DropCause),
    Limit(Limit),
    /// New sockets got smaller buffers than the system's.
    SmallerBuffers,
}

impl Topic {
    fn target_and_level(self) -> (&'static str, tracing::Level) {
        use tracing::Level;
        match self {
            Self::Denied(_)
            | Self::NameLookupRefused
            | Self::Dropped(DropCause::NotAdmitted)
            | Self::Dropped(DropCause::Forbidden) => ("wasi_udp_host::policy", Level::WARN),
            // The WIT's own rule, not a refusal: nothing for the user to fix.
            Self::Dropped(DropCause::NotPeer) => ("wasi_udp_host::policy", Level::DEBUG),
            Self::Dropped(DropCause::Oversized | DropCause::KernelQueue)
            | Self::Limit(_)
            | Self::SmallerBuffers => ("wasi_udp_host::limits", Level::WARN),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(socket_use) => write!(f, "refused {socket_use} operations"),
            Self::NameLookupRefused => f.write_str("refused name lookups"),
            Self::Dropped(cause) => write!(f, "received datagrams dropped {}", cause.describe()),
            Self::Limit(limit) => write!(f, "operations stopped by {}", limit.flag()),
            Self::SmallerBuffers => f.write_str("sockets given smaller buffers"),
        }
    }
}

/// How many distinct (topic, peer) pairs are reported in full; past that
/// only counts are.
const MAX_DISTINCT: usize = 256;
/// How often a throttled topic reports its count.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// One store's throttled reports.
pub(crate) struct Reporter {
    hints: Hints,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: HashSet<(Topic, Option<SocketAddr>)>,
    /// Per topic: events since the last report, and since when.
    held: HashMap<Topic, (u64, Instant)>,
}

impl Reporter {
    pub(crate) fn new(hints: Hints) -> Self {
        Self {
            hints,
            state: Mutex::default(),
        }
    }

    pub(crate) fn hints(&self) -> Hints {
        self.hints
    }

    /// Reports `count` events of `topic` about `peer`: in full (`message`)
    /// the first time for this topic and peer, otherwise counted and
    /// summarised at most every ten seconds. Returns whether the message
    /// was logged in full.
    pub(crate) fn report(
        &self,
        topic: Topic,
        peer: Option<SocketAddr>,
        count: u64,
        message: impl FnOnce() -> String,
    ) -> bool {
        let (target, level) = topic.target_and_level();
        if !enabled(target, level) {
            return false;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.seen.len() < MAX_DISTINCT && state.seen.insert((topic, peer)) {
            drop(state);
            emit(target, level, &message());
            return true;
        }
        let now = Instant::now();
        let (held, since) = state.held.entry(topic).or_insert((0, now));
        *held += count;
        if now.duration_since(*since) >= SUMMARY_EVERY {
            let summary = format!(
                "{held} more {topic} in the last {} s",
                now.duration_since(*since).as_secs()
            );
            state.held.remove(&topic);
            drop(state);
            emit(target, level, &summary);
        }
        false
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (topic, (held, _)) in state.held.drain() {
            if held > 0 {
                let (target, level) = topic.target_and_level();
                emit(target, level, &format!("{held} more {topic}"));
            }
        }
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("hints", &self.hints)
            .finish_non_exhaustive()
    }
}

fn enabled(target: &'static str, level: tracing::Level) -> bool {
    use tracing::Level;
    // `enabled!` needs the target and level as constants.
    match (target, level) {
        ("wasi_udp_host::policy", Level::WARN) => {
            tracing::enabled!(target: "wasi_udp_host::policy", Level::WARN)
        }
        ("wasi_udp_host::policy", _) => {
            tracing::enabled!(target: "wasi_udp_host::policy", Level::DEBUG)
        }
        _ => tracing::enabled!(target: "wasi_udp_host::limits", Level::WARN),
    }
}

fn emit(target: &'static str, level: tracing::Level, message: &str) {
    use tracing::Level;
    match (target, level) {
        ("wasi_udp_host::policy", Level::WARN) => {
            tracing::warn!(target: "wasi_udp_host::policy", "{message}")
        }
        ("wasi_udp_host::policy", _) => {
            tracing::debug!(target: "wasi_udp_host::policy", "{message}")
        }
        _ => tracing::warn!(target: "wasi_udp_host::limits", "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn hints_name_the_grant_in_the_embedders_terms() {
        let rule: Rule = "send:10.0.0.53:53".parse().expect("rule");
        assert_eq!(Hints::CliFlags.grant(&rule), "--allow send:10.0.0.53:53");
        assert_eq!(
            Hints::Builder.grant(&rule),
            "UdpCtxBuilder::allow(\"send:10.0.0.53:53\")"
        );
        let rule: Rule = "receive:[fd00::1]".parse().expect("rule");
        assert_eq!(Hints::CliFlags.grant(&rule), "--allow 'receive:[fd00::1]'");
        assert_eq!(
            Hints::CliFlags.raise(Limit::MaxSockets),
            "raise it with --max-sockets N"
        );
        assert_eq!(
            Hints::Builder.raise(Limit::MaxSockets),
            "raise it with UdpCtxBuilder::max_sockets"
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_topic_and_peer_is_reported_in_full_once_then_counted() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let reporter = Reporter::new(Hints::CliFlags);
        let peer = Some("10.0.0.1:53".parse().expect("addr"));
        let other = Some("10.0.0.2:53".parse().expect("addr"));
        let topic = Topic::Denied(SocketUse::Send);
        assert!(reporter.report(topic, peer, 1, || "first".into()));
        for _ in 0..1000 {
            assert!(!reporter.report(topic, peer, 1, || "again".into()));
        }
        assert!(reporter.report(topic, other, 1, || "other peer".into()));
        drop(reporter);
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("first"), "{text}");
        assert!(lines[1].contains("other peer"), "{text}");
        assert!(
            lines[2].contains("1000 more refused send operations"),
            "{text}"
        );
    }
}
