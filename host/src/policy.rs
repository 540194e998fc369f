//! Who may bind, connect, send and receive where.
//!
//! Every check runs before the syscall it guards. A refusal becomes
//! `access-denied` for the guest and is logged (target `wasi_udp_host::policy`)
//! with the reason the policy gave.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
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

/// Decides whether a guest may use an address. Called before every bind,
/// connect and send, and for every received datagram's source.
///
/// Implementations must be cheap: `check` runs on the datagram path.
pub trait UdpPolicy: Send + Sync + 'static {
    /// `Ok(())` to allow `socket_use` of `addr`, `Err` to refuse it.
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial>;
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

/// A rule that grants some uses of some addresses and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// The uses granted.
    pub uses: Vec<SocketUse>,
    /// The addresses granted.
    pub net: IpNet,
    /// The ports granted (inclusive).
    pub ports: RangeInclusive<u16>,
}

impl AllowRule {
    /// Every use of every port in `net`.
    pub fn network(net: IpNet) -> Self {
        Self {
            uses: SocketUse::ALL.to_vec(),
            net,
            ports: 0..=u16::MAX,
        }
    }

    /// Whether this rule grants `socket_use` of `addr`.
    pub fn allows(&self, socket_use: SocketUse, addr: SocketAddr) -> bool {
        self.uses.contains(&socket_use)
            && self.net.contains(addr.ip())
            && self.ports.contains(&addr.port())
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uses: Vec<&str> = self.uses.iter().map(|u| u.name()).collect();
        write!(f, "allow {} {}", uses.join(","), self.net)?;
        match (*self.ports.start(), *self.ports.end()) {
            (0, u16::MAX) => Ok(()),
            (a, b) if a == b => write!(f, " port {a}"),
            (a, b) => write!(f, " ports {a}-{b}"),
        }
    }
}

impl FromStr for AllowRule {
    type Err = ParseRuleError;

    /// `CIDR`, `CIDR:PORT` or `CIDR:PORT-PORT`; an IPv6 CIDR with ports is
    /// written in brackets: `[::1/128]:5000-5010`. Grants every use.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (net, ports) = if let Some(rest) = s.strip_prefix('[') {
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
        } else if s.matches(':').count() == 1 {
            let (net, ports) = s.split_once(':').unwrap_or((s, ""));
            (net, Some(ports))
        } else {
            (s, None)
        };
        let net: IpNet = net.parse()?;
        let ports = match ports {
            None => 0..=u16::MAX,
            Some(ports) => parse_ports(ports)?,
        };
        Ok(Self {
            uses: SocketUse::ALL.to_vec(),
            net,
            ports,
        })
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

/// A rule or network that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRuleError(pub String);

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseRuleError {}

/// A list of [`AllowRule`]s: an operation is allowed when any rule grants it,
/// and refused otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<AllowRule>,
}

impl AllowList {
    /// An empty list, which refuses everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loopback (`127.0.0.0/8`, `::1`) for every use, plus binding to the
    /// wildcard addresses (`0.0.0.0`, `::`): what arrives on a wildcard-bound
    /// socket is still filtered by the `receive` rules.
    pub fn loopback() -> Self {
        let mut list = Self::new();
        let loopback_v4 = IpNet {
            addr: Ipv4Addr::new(127, 0, 0, 0).into(),
            prefix: 8,
        };
        list.push(AllowRule::network(loopback_v4));
        list.push(AllowRule::network(IpNet::host(Ipv6Addr::LOCALHOST.into())));
        for wildcard in [
            IpAddr::from(Ipv4Addr::UNSPECIFIED),
            Ipv6Addr::UNSPECIFIED.into(),
        ] {
            list.push(AllowRule {
                uses: vec![SocketUse::Bind],
                net: IpNet::host(wildcard),
                ports: 0..=u16::MAX,
            });
        }
        list
    }

    /// Appends a rule.
    pub fn push(&mut self, rule: AllowRule) -> &mut Self {
        self.rules.push(rule);
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }
}

impl UdpPolicy for AllowList {
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial> {
        if self.rules.iter().any(|rule| rule.allows(socket_use, addr)) {
            return Ok(());
        }
        Err(Denial {
            reason: format!(
                "{socket_use} {addr}: no rule allows it (rules: {})",
                if self.rules.is_empty() {
                    "none".to_string()
                } else {
                    self.rules
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
        })
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
        let rule: AllowRule = "10.0.0.0/8:53".parse().expect("rule");
        assert!(rule.allows(SocketUse::Send, addr("10.9.9.9:53")));
        assert!(!rule.allows(SocketUse::Send, addr("10.9.9.9:54")));
        let rule: AllowRule = "[::1/128]:5000-5010".parse().expect("rule");
        assert!(rule.allows(SocketUse::Receive, addr("[::1]:5005")));
        assert!(!rule.allows(SocketUse::Receive, addr("[::1]:5011")));
        let rule: AllowRule = "::1".parse().expect("rule");
        assert!(rule.allows(SocketUse::Bind, addr("[::1]:1")));
        let rule: AllowRule = "192.168.0.1".parse().expect("rule");
        assert!(rule.allows(SocketUse::Connect, addr("192.168.0.1:9")));
        assert!("10.0.0.0/8:9-1".parse::<AllowRule>().is_err());
        assert!("10.0.0.0/8:x".parse::<AllowRule>().is_err());
        assert!("[::1:5".parse::<AllowRule>().is_err());
    }

    #[test]
    fn loopback_list_grants_loopback_and_wildcard_bind_only() {
        let list = AllowList::loopback();
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
}
