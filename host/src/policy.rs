//! Who may bind, connect, send and receive where.
//!
//! Every check runs before the syscall it guards. A refusal becomes
//! `access-denied` for the guest and is logged (target `wasi_udp_host::policy`)
//! with the reason the policy gave.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::str::FromStr;

/// What a guest wants to do with an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketUse {
    /// `start-bind` to this local address.
    Bind,
    /// `stream(some(addr))`: associate the socket with this peer.
    Connect,
    /// `send` of a datagram to this address (unconnected streams).
    Send,
    /// `receive` of a datagram from this source address.
    Receive,
}

impl SocketUse {
    /// Every use, in a fixed order.
    pub const ALL: [SocketUse; 4] = [Self::Bind, Self::Connect, Self::Send, Self::Receive];

    /// The lowercase name used in rules and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::Send => "send",
            Self::Receive => "receive",
        }
    }
}

impl fmt::Display for SocketUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a policy refused an operation. Shown in logs, never to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Human-readable reason, e.g. the rule that refused or the flag that
    /// would grant the operation.
    pub reason: String,
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
/// service; the guest's call waits with it. Sends to an unconnected
/// destination and received datagrams' sources ask [`check`](Self::check),
/// which runs on the datagram path and must answer at once (once per address
/// per call); a policy that consults a service answers it from what it has
/// already approved, or grants destinations at connect time.
pub trait UdpPolicy: Send + Sync + 'static {
    /// `Ok(())` to allow `socket_use` of `addr`, `Err` to refuse it, now.
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
        Err(Denial {
            reason: format!("{socket_use} {addr}: this host grants no UDP access"),
        })
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

/// An IP network in CIDR form: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`. Host bits of `addr` are cleared.
    ///
    /// # Errors
    /// If `prefix` is longer than the address (32 for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ParseRuleError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ParseRuleError(format!(
                "prefix /{prefix} is longer than {max} bits"
            )));
        }
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask128(prefix))),
        };
        Ok(Self { addr, prefix })
    }

    /// The single address `addr` (a /32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    /// Whether `ip` lies in this network. IPv4 and IPv6 never match each
    /// other: sockets in this provider never mix families.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                ip.to_bits() & mask32(self.prefix) == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                ip.to_bits() & mask128(self.prefix) == net.to_bits()
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = ParseRuleError;

    /// `ADDR/PREFIX` or a bare `ADDR` (a single host).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| ParseRuleError(format!("`{addr}` is not an IP address")))?;
        match prefix {
            None => Ok(Self::host(addr)),
            Some(prefix) => {
                let prefix = prefix
                    .parse()
                    .map_err(|_| ParseRuleError(format!("`{prefix}` is not a prefix length")))?;
                Self::new(addr, prefix)
            }
        }
    }
}

/// Which uses of which addresses a rule covers: a set of [`SocketUse`]s, an
/// [`IpNet`] and a port range. Whether it allows or denies depends on the
/// list of a [`RuleSet`] it is in.
///
/// Written `[USES:]CIDR[:PORT[-PORT]]`, with USES a comma-separated list of
/// `bind`, `connect`, `send`, `receive` (or `all`, the default) and IPv6
/// networks in brackets when ports follow:
/// `send,connect:10.0.0.0/8:53`, `127.0.0.1`, `bind:0.0.0.0:5353`,
/// `receive:[fd00::/8]:5000-5100`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The uses the rule covers.
    pub uses: Vec<SocketUse>,
    /// The addresses it covers.
    pub net: IpNet,
    /// The ports it covers (inclusive).
    pub ports: RangeInclusive<u16>,
}

impl Rule {
    /// Every use of every port in `net`.
    pub fn network(net: IpNet) -> Self {
        Self {
            uses: SocketUse::ALL.to_vec(),
            net,
            ports: 0..=u16::MAX,
        }
    }

    /// Whether the rule covers `socket_use` of `addr`.
    pub fn matches(&self, socket_use: SocketUse, addr: SocketAddr) -> bool {
        self.uses.contains(&socket_use)
            && self.net.contains(addr.ip())
            && self.ports.contains(&addr.port())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uses.len() == SocketUse::ALL.len() {
            f.write_str("all")?;
        } else {
            let uses: Vec<&str> = self.uses.iter().map(|u| u.name()).collect();
            f.write_str(&uses.join(","))?;
        }
        write!(f, " {}", self.net)?;
        match (*self.ports.start(), *self.ports.end()) {
            (0, u16::MAX) => Ok(()),
            (a, b) if a == b => write!(f, " port {a}"),
            (a, b) => write!(f, " ports {a}-{b}"),
        }
    }
}

/// `bind,send` → the uses, or `None` when `s` is not a list of use names
/// (so that it is read as an address instead).
fn parse_uses(s: &str) -> Option<Vec<SocketUse>> {
    let mut uses = Vec::new();
    for name in s.split(',') {
        match name {
            "all" | "*" => uses.extend(SocketUse::ALL),
            _ => uses.push(*SocketUse::ALL.iter().find(|u| u.name() == name)?),
        }
    }
    uses.sort_by_key(|u| SocketUse::ALL.iter().position(|a| a == u));
    uses.dedup();
    Some(uses)
}

impl FromStr for Rule {
    type Err = ParseRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (uses, address) = match s.split_once(':') {
            Some((head, rest)) => match parse_uses(head) {
                Some(uses) => (uses, rest),
                None => (SocketUse::ALL.to_vec(), s),
            },
            None => (SocketUse::ALL.to_vec(), s),
        };
        let (net, ports) = if let Some(rest) = address.strip_prefix('[') {
            let (net, after) = rest
                .split_once(']')
                .ok_or_else(|| ParseRuleError(format!("`{s}`: missing `]`")))?;
            match after {
                "" => (net, None),
                _ => match after.strip_prefix(':') {
                    Some(ports) => (net, Some(ports)),
                    None => {
                        return Err(ParseRuleError(format!("`{s}`: expected `:PORT` after `]`")));
                    }
                },
            }
        } else if address.matches(':').count() == 1 {
            let (net, ports) = address.split_once(':').unwrap_or((address, ""));
            (net, Some(ports))
        } else {
            (address, None)
        };
        let net: IpNet = net.parse()?;
        let ports = match ports {
            None => 0..=u16::MAX,
            Some(ports) => parse_ports(ports)?,
        };
        Ok(Self { uses, net, ports })
    }
}

fn parse_ports(s: &str) -> Result<RangeInclusive<u16>, ParseRuleError> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| ParseRuleError(format!("`{p}` is not a port number")))
    };
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if start > end {
        return Err(ParseRuleError(format!("port range `{s}` is empty")));
    }
    Ok(start..=end)
}

/// Why a rule did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRuleError(pub String);

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseRuleError {}

/// What a [`RuleSet`] decided, and which rule decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl RuleSet {
    /// No rules: refuses everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows every use of loopback (`127.0.0.0/8`, `::1`) and binding to the
    /// wildcard addresses (`0.0.0.0`, `::`), which std's `UdpSocket::connect`
    /// and most clients do before talking to a peer.
    pub fn loopback() -> Self {
        let mut set = Self::new();
        let loopback_v4 = IpNet {
            addr: Ipv4Addr::new(127, 0, 0, 0).into(),
            prefix: 8,
        };
        set.allow(Rule::network(loopback_v4));
        set.allow(Rule::network(IpNet::host(Ipv6Addr::LOCALHOST.into())));
        for wildcard in [
            IpAddr::from(Ipv4Addr::UNSPECIFIED),
            Ipv6Addr::UNSPECIFIED.into(),
        ] {
            set.allow(Rule {
                uses: vec![SocketUse::Bind],
                net: IpNet::host(wildcard),
                ports: 0..=u16::MAX,
            });
        }
        set
    }

    /// Allows every use of every address, both families.
    pub fn everything() -> Self {
        let mut set = Self::new();
        set.allow(Rule::network(
            IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).expect("/0"),
        ));
        set.allow(Rule::network(
            IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0).expect("/0"),
        ));
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
            Decision::Denied(rule) => Err(Denial {
                reason: format!("{socket_use} {addr}: refused by `deny {rule}`"),
            }),
            Decision::NoRule => Err(Denial {
                reason: format!("{socket_use} {addr}: no allow rule covers it"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net: IpNet = "10.1.0.0/16".parse().expect("net");
        assert!(net.contains("10.1.255.3".parse().expect("ip")));
        assert!(!net.contains("10.2.0.1".parse().expect("ip")));
        assert!(!net.contains("::1".parse().expect("ip")));
        let all: IpNet = "0.0.0.0/0".parse().expect("net");
        assert!(all.contains("8.8.8.8".parse().expect("ip")));
        let v6: IpNet = "fe80::/10".parse().expect("net");
        assert!(v6.contains("fe80::1".parse().expect("ip")));
        assert!(!v6.contains("fec0::1".parse().expect("ip")));
        assert_eq!(
            "10.1.2.3/8".parse::<IpNet>().expect("net").to_string(),
            "10.0.0.0/8"
        );
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope/8".parse::<IpNet>().is_err());
    }

    #[test]
    fn rules_parse_with_and_without_ports() {
        let rule: Rule = "10.0.0.0/8:53".parse().expect("rule");
        assert!(rule.matches(SocketUse::Send, addr("10.9.9.9:53")));
        assert!(!rule.matches(SocketUse::Send, addr("10.9.9.9:54")));
        let rule: Rule = "[::1/128]:5000-5010".parse().expect("rule");
        assert!(rule.matches(SocketUse::Receive, addr("[::1]:5005")));
        assert!(!rule.matches(SocketUse::Receive, addr("[::1]:5011")));
        let rule: Rule = "::1".parse().expect("rule");
        assert!(rule.matches(SocketUse::Bind, addr("[::1]:1")));
        let rule: Rule = "192.168.0.1".parse().expect("rule");
        assert!(rule.matches(SocketUse::Connect, addr("192.168.0.1:9")));
        assert!("10.0.0.0/8:9-1".parse::<Rule>().is_err());
        assert!("10.0.0.0/8:x".parse::<Rule>().is_err());
        assert!("[::1:5".parse::<Rule>().is_err());
    }

    #[test]
    fn loopback_set_grants_loopback_and_wildcard_bind_only() {
        let list = RuleSet::loopback();
        assert!(list.check(SocketUse::Send, addr("127.0.0.1:9")).is_ok());
        assert!(list.check(SocketUse::Receive, addr("127.3.2.1:9")).is_ok());
        assert!(list.check(SocketUse::Connect, addr("[::1]:9")).is_ok());
        assert!(list.check(SocketUse::Bind, addr("0.0.0.0:0")).is_ok());
        assert!(list.check(SocketUse::Bind, addr("[::]:0")).is_ok());
        assert!(list.check(SocketUse::Send, addr("0.0.0.0:9")).is_err());
        let denial = list
            .check(SocketUse::Send, addr("10.0.0.1:53"))
            .expect_err("denied");
        assert!(denial.reason.contains("send 10.0.0.1:53"), "{denial}");
    }

    #[test]
    fn deny_all_and_allow_all() {
        assert!(DenyAll.check(SocketUse::Bind, addr("127.0.0.1:0")).is_err());
        assert!(AllowAll.check(SocketUse::Send, addr("10.0.0.1:53")).is_ok());
    }

    #[test]
    fn rules_parse_uses_before_the_address() {
        let rule: Rule = "send,connect:10.0.0.0/8:53".parse().expect("rule");
        assert!(rule.matches(SocketUse::Send, addr("10.1.1.1:53")));
        assert!(rule.matches(SocketUse::Connect, addr("10.1.1.1:53")));
        assert!(!rule.matches(SocketUse::Bind, addr("10.1.1.1:53")));
        assert!(!rule.matches(SocketUse::Receive, addr("10.1.1.1:53")));
        assert_eq!(rule.to_string(), "connect,send 10.0.0.0/8 port 53");
        let rule: Rule = "receive:[fd00::/8]:5000-5100".parse().expect("rule");
        assert!(rule.matches(SocketUse::Receive, addr("[fd00::1]:5050")));
        assert!(!rule.matches(SocketUse::Send, addr("[fd00::1]:5050")));
        let rule: Rule = "bind:::".parse().expect("rule");
        assert!(rule.matches(SocketUse::Bind, addr("[::]:0")));
        let rule: Rule = "all:127.0.0.1".parse().expect("rule");
        assert_eq!(rule.uses, SocketUse::ALL);
        // Hex that is not a use name is an IPv6 address, not uses.
        let rule: Rule = "bad::1".parse().expect("rule");
        assert!(rule.matches(SocketUse::Send, addr("[bad::1]:1")));
        assert!("sned:10.0.0.0/8".parse::<Rule>().is_err());
    }

    #[test]
    fn a_deny_rule_wins_over_any_allow_rule() {
        let mut set = RuleSet::new();
        set.allow("10.0.0.0/8".parse().expect("rule"));
        set.deny("send:10.0.0.5".parse().expect("rule"));
        assert!(set.check(SocketUse::Send, addr("10.0.0.4:53")).is_ok());
        assert!(set.check(SocketUse::Connect, addr("10.0.0.5:53")).is_ok());
        let denial = set
            .check(SocketUse::Send, addr("10.0.0.5:53"))
            .expect_err("denied");
        assert!(denial.reason.contains("deny send 10.0.0.5/32"), "{denial}");
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
                set.check(SocketUse::Send, addr(target)).is_ok(),
                reversed.check(SocketUse::Send, addr(target)).is_ok()
            );
        }
        assert!(set.explain().starts_with("deny  send 10.0.0.5/32"));
    }

    #[test]
    fn everything_allows_both_families() {
        let set = RuleSet::everything();
        assert!(set.check(SocketUse::Send, addr("8.8.8.8:53")).is_ok());
        assert!(set.check(SocketUse::Bind, addr("[2001:db8::1]:9")).is_ok());
        assert_eq!(
            RuleSet::new().explain(),
            "(no rules: everything is refused)"
        );
    }
}
