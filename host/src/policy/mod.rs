//! Who may bind, connect, send and receive where.
//!
//! The rules mean what a stateful firewall's rules mean:
//! - every datagram that leaves is covered by a `send` rule, whether the
//!   stream is connected or not; connecting (`stream(some(peer))`) needs
//!   `connect` *and* `send` for the peer, so a connected stream sends only
//!   where sending is allowed;
//! - what a socket was allowed to send to, it may hear back from: replies
//!   from a connected peer, and from any destination the socket sent to, are
//!   admitted without a `receive` rule;
//! - `receive` rules admit unsolicited datagrams (servers);
//! - a deny rule refuses whatever allows it, replies included.
//!
//! Every check runs before the syscall it guards. A refusal becomes
//! `access-denied` for the guest and a warning for the host that says what
//! was refused, why, and what would grant it (throttled; see
//! [`UdpCtxBuilder::hints`](crate::UdpCtxBuilder::hints)).

mod embedded;
mod rules;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

pub(crate) use self::embedded::embedded_ipv4;
pub use self::rules::{IpNet, ParseRuleError, Rule};

/// What a guest wants to do with an address.
///
/// The first four are what `wasi:sockets/udp@0.2.1` does; the last three
/// are what the `wasi-udp:extensions` interface adds, and a rule grants
/// them only by name (a rule without uses, or `all`, means the first
/// four). More uses may come with more extensions: match with a wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketUse {
    /// `start-bind` to this local address.
    Bind,
    /// `stream(some(addr))`: associate the socket with this peer.
    Connect,
    /// `send` of a datagram to this address, connected or not.
    Send,
    /// `receive` of a datagram from this source address.
    Receive,
    /// Join this multicast group, and send to it (with `send` too).
    Join,
    /// Send to this broadcast address (with `send` too).
    Broadcast,
    /// Bind to this address and port with the port shared (with `bind`
    /// too).
    Share,
}

impl SocketUse {
    /// Every use, in a fixed order.
    pub const ALL: [SocketUse; 7] = [
        Self::Bind,
        Self::Connect,
        Self::Send,
        Self::Receive,
        Self::Join,
        Self::Broadcast,
        Self::Share,
    ];

    /// The uses of `wasi:sockets/udp@0.2.1`: what a rule without uses (or
    /// with `all`) grants.
    pub const BASIC: [SocketUse; 4] = [Self::Bind, Self::Connect, Self::Send, Self::Receive];

    /// The lowercase name used in rules and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::Send => "send",
            Self::Receive => "receive",
            Self::Join => "join",
            Self::Broadcast => "broadcast",
            Self::Share => "share",
        }
    }

    /// The use called `name` in rules, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What wasmtime-wasi's `socket_addr_check` is asked, as the use a
/// [`UdpPolicy`] decides: so that one [`RuleSet`] can answer for
/// wasmtime-wasi's sockets (TCP included) too.
impl From<wasmtime_wasi::sockets::SocketAddrUse> for SocketUse {
    fn from(socket_use: wasmtime_wasi::sockets::SocketAddrUse) -> Self {
        use wasmtime_wasi::sockets::SocketAddrUse;
        match socket_use {
            SocketAddrUse::UdpBind | SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => {
                Self::Bind
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::TcpAccept => Self::Connect,
            SocketAddrUse::UdpSend => Self::Send,
            SocketAddrUse::UdpReceive => Self::Receive,
        }
    }
}

impl fmt::Display for SocketUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a policy refused an operation. Shown in the host's logs, never to
/// the guest (which sees `access-denied`).
///
/// A denial is either *not granted* (nothing allows it; a reply to what the
/// socket sent is still admitted) or *forbidden* (refused outright, replies
/// included). It may carry a [`Rule`] that would grant it, which the
/// provider's messages turn into advice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    reason: String,
    forbidden: bool,
    grant: Option<Rule>,
}

impl Denial {
    /// Nothing grants the operation.
    pub fn not_granted(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            forbidden: false,
            grant: None,
        }
    }

    /// The operation is refused outright: for a received datagram, even a
    /// reply to something the socket sent is dropped.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            forbidden: true,
            grant: None,
        }
    }

    /// The same denial, naming a rule that would grant the operation.
    pub fn with_grant(mut self, rule: Rule) -> Self {
        self.grant = Some(rule);
        self
    }

    /// Why, e.g. the rule that refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the operation is refused outright (see [`forbidden`](Self::forbidden)).
    pub fn is_forbidden(&self) -> bool {
        self.forbidden
    }

    /// A rule that would grant the operation, if the policy named one.
    pub fn grant(&self) -> Option<&Rule> {
        self.grant.as_ref()
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Decides whether a guest may use an address.
///
/// Binds and connects (`start-bind`, `stream(some)`) ask
/// [`check_async`](Self::check_async), which may wait, e.g. to consult a
/// service; the guest's call waits with it. A connect asks about both
/// [`SocketUse::Connect`] and [`SocketUse::Send`] for the peer. Sends to an
/// unconnected destination and received datagrams' sources ask
/// [`check`](Self::check), which runs on the datagram path and must answer
/// at once (once per address per call); a policy that consults a service
/// answers it from what it has already approved, or grants destinations at
/// connect time.
///
/// A received datagram from a source the policy does not grant is still
/// admitted when it is a reply: from the socket's connected peer, or from
/// an address the socket was allowed to send to. Only a
/// [`forbidden`](Denial::forbidden) denial drops those.
pub trait UdpPolicy: Send + Sync + 'static {
    /// `Ok(())` to allow `socket_use` of `addr`, `Err` to refuse it, now.
    ///
    /// # Errors
    /// The [`Denial`] says why the use is refused.
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial>;

    /// The same decision for a bind or a connect, which may wait. Defaults
    /// to [`check`](Self::check).
    fn check_async(
        &self,
        socket_use: SocketUse,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<(), Denial>> + Send + '_>> {
        Box::pin(std::future::ready(self.check(socket_use, addr)))
    }
}

/// Refuses everything. The default of [`UdpCtxBuilder`](crate::UdpCtxBuilder).
#[derive(Clone, Copy, Debug, Default)]
pub struct DenyAll;

impl UdpPolicy for DenyAll {
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial> {
        Err(Denial::not_granted("this host grants no UDP access")
            .with_grant(Rule::exactly(socket_use, addr)))
    }
}

/// Allows everything the operating system allows.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl UdpPolicy for AllowAll {
    fn check(&self, _: SocketUse, _: SocketAddr) -> Result<(), Denial> {
        Ok(())
    }
}

/// What a [`RuleSet`] decided, and which rule decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision<'a> {
    /// Granted by this allow rule.
    Allowed(&'a Rule),
    /// Refused by this deny rule.
    Denied(&'a Rule),
    /// No rule covers it, so it is refused.
    NoRule,
}

/// The declarative policy: allow rules and deny rules.
///
/// Evaluation, the same for every check:
/// 1. a deny rule that matches refuses, whatever allows it;
/// 2. otherwise an allow rule that matches grants;
/// 3. otherwise the use is refused.
///
/// So the order rules were added in never matters, a deny always carves
/// out of an allow, and an empty set refuses everything.
///
/// IPv4 deny rules also apply to the IPv4 address an IPv6 address may carry
/// (NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo,
/// IPv4-compatible `::/96`, IPv4-translated and IPv4-mapped addresses): with
/// `deny 192.0.2.0/24`, a send to `64:ff9b::192.0.2.1` is refused too. IPv4
/// allow rules grant nothing in IPv6: both fail closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

/// The ports a base grants binding to: the system's choice (0) and the
/// unprivileged ports. Ports below 1024 only ever come from a rule that
/// names them.
const BASE_BIND_PORTS: [std::ops::RangeInclusive<u16>; 2] = [0..=0, 1024..=u16::MAX];

impl RuleSet {
    /// No rules: refuses everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The loopback base:
    /// - connect, send and receive: any port of `127.0.0.0/8` and `::1`;
    /// - bind: `127.0.0.0/8` and `::1` on port 0 or 1024–65535, and the
    ///   wildcard addresses `0.0.0.0` and `::` on port 0 only (what std's
    ///   implicit bind and most clients do).
    ///
    /// A fixed port on a wildcard address would occupy that port on every
    /// interface, and ports below 1024 belong to system services: both need
    /// a rule of their own (e.g. `bind:0.0.0.0:5353`).
    pub fn loopback() -> Self {
        let mut set = Self::new();
        let loopback = [
            IpNet::new(Ipv4Addr::new(127, 0, 0, 0).into(), 8).expect("127.0.0.0/8"),
            IpNet::host(Ipv6Addr::LOCALHOST.into()),
        ];
        let talk = [SocketUse::Connect, SocketUse::Send, SocketUse::Receive];
        for net in loopback {
            set.allow(Rule::new(talk, net, 0..=u16::MAX));
            for ports in BASE_BIND_PORTS {
                set.allow(Rule::new([SocketUse::Bind], net, ports));
            }
        }
        for wildcard in [
            IpAddr::from(Ipv4Addr::UNSPECIFIED),
            Ipv6Addr::UNSPECIFIED.into(),
        ] {
            set.allow(Rule::new([SocketUse::Bind], IpNet::host(wildcard), 0..=0));
        }
        set
    }

    /// The everything base: connect, send and receive anywhere, and bind
    /// anywhere on port 0 or 1024–65535. Ports below 1024 still need a rule
    /// that names them.
    pub fn everything() -> Self {
        let mut set = Self::new();
        let talk = [SocketUse::Connect, SocketUse::Send, SocketUse::Receive];
        for net in [IpNet::ALL_V4, IpNet::ALL_V6] {
            set.allow(Rule::new(talk, net, 0..=u16::MAX));
            for ports in BASE_BIND_PORTS {
                set.allow(Rule::new([SocketUse::Bind], net, ports));
            }
        }
        set
    }

    /// Adds an allow rule.
    pub fn allow(&mut self, rule: Rule) -> &mut Self {
        self.allow.push(rule);
        self
    }

    /// Adds a deny rule.
    pub fn deny(&mut self, rule: Rule) -> &mut Self {
        self.deny.push(rule);
        self
    }

    /// Adds every rule of `other`.
    pub fn extend(&mut self, other: &RuleSet) -> &mut Self {
        self.allow.extend(other.allow.iter().cloned());
        self.deny.extend(other.deny.iter().cloned());
        self
    }

    /// The allow rules, in the order added.
    pub fn allow_rules(&self) -> &[Rule] {
        &self.allow
    }

    /// The deny rules, in the order added.
    pub fn deny_rules(&self) -> &[Rule] {
        &self.deny
    }

    /// What the set decides for `socket_use` of `addr`, and why.
    pub fn decide(&self, socket_use: SocketUse, addr: SocketAddr) -> Decision<'_> {
        if let Some(rule) = self.deny.iter().find(|r| r.matches(socket_use, addr)) {
            return Decision::Denied(rule);
        }
        if let SocketAddr::V6(v6) = addr
            && self.deny.iter().any(|r| r.net.addr().is_ipv4())
        {
            for carried in embedded_ipv4(*v6.ip()) {
                let carried = SocketAddr::new(carried.into(), addr.port());
                if let Some(rule) = self.deny.iter().find(|r| r.matches(socket_use, carried)) {
                    return Decision::Denied(rule);
                }
            }
        }
        match self.allow.iter().find(|r| r.matches(socket_use, addr)) {
            Some(rule) => Decision::Allowed(rule),
            None => Decision::NoRule,
        }
    }

    /// The rules as lines, deny rules first (the order they are applied).
    pub fn explain(&self) -> String {
        let mut lines = Vec::new();
        for rule in &self.deny {
            lines.push(format!("deny  {rule}"));
        }
        for rule in &self.allow {
            lines.push(format!("allow {rule}"));
        }
        if lines.is_empty() {
            lines.push("(no rules: everything is refused)".into());
        }
        lines.join("\n")
    }
}

impl UdpPolicy for RuleSet {
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial> {
        match self.decide(socket_use, addr) {
            Decision::Allowed(_) => Ok(()),
            Decision::Denied(rule) => Err(Denial::forbidden(format!(
                "refused by the rule `deny {rule}`"
            ))),
            Decision::NoRule => Err(Denial::not_granted(format!("no rule allows {socket_use}"))
                .with_grant(Rule::exactly(socket_use, addr))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn allowed(set: &RuleSet, socket_use: SocketUse, target: &str) -> bool {
        set.check(socket_use, addr(target)).is_ok()
    }

    #[test]
    fn loopback_set_grants_loopback_and_port_0_wildcard_binds_only() {
        let list = RuleSet::loopback();
        assert!(allowed(&list, SocketUse::Send, "127.0.0.1:9"));
        assert!(allowed(&list, SocketUse::Send, "127.0.0.1:53"));
        assert!(allowed(&list, SocketUse::Receive, "127.3.2.1:9"));
        assert!(allowed(&list, SocketUse::Connect, "[::1]:9"));
        assert!(allowed(&list, SocketUse::Bind, "0.0.0.0:0"));
        assert!(allowed(&list, SocketUse::Bind, "[::]:0"));
        assert!(allowed(&list, SocketUse::Bind, "127.0.0.1:5353"));
        assert!(allowed(&list, SocketUse::Bind, "[::1]:1024"));
        assert!(!allowed(&list, SocketUse::Send, "0.0.0.0:9"));
        let denial = list
            .check(SocketUse::Send, addr("10.0.0.1:53"))
            .expect_err("denied");
        assert!(!denial.is_forbidden());
        assert_eq!(
            denial.grant().map(Rule::spec).as_deref(),
            Some("send:10.0.0.1:53")
        );
    }

    #[test]
    fn no_base_grants_a_fixed_wildcard_port_or_a_privileged_port() {
        let list = RuleSet::loopback();
        for refused in [
            "0.0.0.0:999",
            "[::]:999",
            "0.0.0.0:5353",
            "127.0.0.1:53",
            "[::1]:1023",
        ] {
            let denial = list
                .check(SocketUse::Bind, addr(refused))
                .expect_err(refused);
            let grant = denial.grant().expect("a grant").spec();
            assert!(grant.starts_with("bind:"), "{grant}");
            let mut with_grant = RuleSet::loopback();
            with_grant.allow(grant.parse().expect("grant parses"));
            assert!(allowed(&with_grant, SocketUse::Bind, refused), "{grant}");
        }
        let everything = RuleSet::everything();
        assert!(allowed(&everything, SocketUse::Bind, "0.0.0.0:5353"));
        assert!(allowed(&everything, SocketUse::Bind, "[2001:db8::1]:0"));
        assert!(!allowed(&everything, SocketUse::Bind, "0.0.0.0:53"));
        assert!(allowed(&everything, SocketUse::Send, "192.0.2.1:53"));
    }

    #[test]
    fn deny_all_and_allow_all() {
        let denial = DenyAll
            .check(SocketUse::Bind, addr("127.0.0.1:0"))
            .expect_err("denied");
        assert_eq!(
            denial.grant().map(Rule::spec).as_deref(),
            Some("bind:127.0.0.1:0")
        );
        assert!(AllowAll.check(SocketUse::Send, addr("10.0.0.1:53")).is_ok());
    }

    #[test]
    fn a_deny_rule_wins_over_any_allow_rule() {
        let mut set = RuleSet::new();
        set.allow("10.0.0.0/8".parse().expect("rule"));
        set.deny("send:10.0.0.5".parse().expect("rule"));
        assert!(allowed(&set, SocketUse::Send, "10.0.0.4:53"));
        assert!(allowed(&set, SocketUse::Connect, "10.0.0.5:53"));
        let denial = set
            .check(SocketUse::Send, addr("10.0.0.5:53"))
            .expect_err("denied");
        assert!(denial.is_forbidden());
        assert!(
            denial.reason().contains("deny send 10.0.0.5/32"),
            "{denial}"
        );
        assert_eq!(
            set.decide(SocketUse::Send, addr("192.168.1.1:53")),
            Decision::NoRule
        );
        // Order of adding does not matter.
        let mut reversed = RuleSet::new();
        reversed.deny("send:10.0.0.5".parse().expect("rule"));
        reversed.allow("10.0.0.0/8".parse().expect("rule"));
        for target in ["10.0.0.4:53", "10.0.0.5:53", "192.168.1.1:53"] {
            assert_eq!(
                allowed(&set, SocketUse::Send, target),
                allowed(&reversed, SocketUse::Send, target)
            );
        }
        assert!(set.explain().starts_with("deny  send 10.0.0.5/32"));
    }

    #[test]
    fn ipv4_deny_rules_see_through_ipv6_forms_that_carry_ipv4() {
        let mut set = RuleSet::everything();
        set.deny("192.0.2.0/24".parse().expect("rule"));
        for carrier in [
            "[64:ff9b::192.0.2.1]:53",
            "[2002:c000:201::1]:53",
            "[::ffff:0:192.0.2.1]:53",
            "[::192.0.2.1]:53",
            "[64:ff9b:1::c000:201]:53",
        ] {
            let decision = set.decide(SocketUse::Send, addr(carrier));
            assert!(
                matches!(decision, Decision::Denied(_)),
                "{carrier}: {decision:?}"
            );
        }
        assert!(allowed(&set, SocketUse::Send, "[64:ff9b::198.51.100.1]:53"));
        assert!(allowed(&set, SocketUse::Send, "[2001:db8::1]:53"));
        // An IPv4 allow rule grants nothing through IPv6.
        let mut v4_only = RuleSet::new();
        v4_only.allow("0.0.0.0/0".parse().expect("rule"));
        assert!(!allowed(
            &v4_only,
            SocketUse::Send,
            "[64:ff9b::192.0.2.1]:53"
        ));
    }

    #[test]
    fn everything_allows_both_families() {
        let set = RuleSet::everything();
        assert!(allowed(&set, SocketUse::Send, "8.8.8.8:53"));
        assert!(allowed(&set, SocketUse::Bind, "[2001:db8::1]:9999"));
        assert_eq!(
            RuleSet::new().explain(),
            "(no rules: everything is refused)"
        );
    }
}
