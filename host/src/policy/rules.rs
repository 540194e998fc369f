//! Networks and rules, and the text they are written in.
//!
//! The grammar is `[USES:]NET[:PORTS]`, with IPv6 networks in brackets when
//! ports follow. Parsing refuses every form that could mean two things, or
//! nothing: a bare IPv6 address whose last group could be a port, host bits
//! under a prefix, IPv4-mapped networks, and misspelled uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::SocketUse;

/// An IP network in CIDR form: an address and a prefix length, with no host
/// bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`.
    ///
    /// # Errors
    /// If `prefix` is longer than the address (32 bits for IPv4, 128 for
    /// IPv6), if `addr` has bits set beyond the prefix (`10.0.0.1/8` would
    /// silently mean `10.0.0.0/8`), or if the network lies inside
    /// `::ffff:0:0/96`: IPv4-mapped addresses never reach a socket of this
    /// provider, so such a rule could never match.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ParseRuleError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ParseRuleError::new(format!(
                "prefix /{prefix} is longer than {max} bits"
            )));
        }
        let network = Self::masked(addr, prefix);
        if network.addr != addr {
            return Err(ParseRuleError::new(format!(
                "`{addr}/{prefix}` has bits set beyond the prefix: write `{network}` for the \
                 network, or `{addr}` for the single host"
            )));
        }
        if let IpAddr::V6(v6) = addr
            && prefix >= 96
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            let v4_prefix = prefix - 96;
            let suggestion = if v4_prefix == 32 {
                v4.to_string()
            } else {
                format!("{v4}/{v4_prefix}")
            };
            return Err(ParseRuleError::new(format!(
                "`{addr}/{prefix}` is an IPv4-mapped network, which no socket uses (IPv6 \
                 sockets are IPv6-only): write `{suggestion}`"
            )));
        }
        Ok(network)
    }

    fn masked(addr: IpAddr, prefix: u8) -> Self {
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask128(prefix))),
        };
        Self { addr, prefix }
    }

    /// The single address `addr` (a /32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    /// Every IPv4 address, `0.0.0.0/0`.
    pub const ALL_V4: Self = Self {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: 0,
    };

    /// Every IPv6 address, `::/0`.
    pub const ALL_V6: Self = Self {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        prefix: 0,
    };

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is a single address (a /32 or /128).
    pub fn is_host(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Whether `ip` lies in this network. IPv4 and IPv6 never match each
    /// other here; [`RuleSet`](super::RuleSet) applies IPv4 deny rules to
    /// IPv4 addresses carried inside IPv6 ones.
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
            .map_err(|_| ParseRuleError::new(format!("`{addr}` is not an IP address")))?;
        match prefix {
            None => Self::new(addr, if addr.is_ipv4() { 32 } else { 128 }),
            Some(prefix) => {
                let prefix = prefix.parse().map_err(|_| {
                    ParseRuleError::new(format!("`{prefix}` is not a prefix length"))
                })?;
                Self::new(addr, prefix)
            }
        }
    }
}

/// Which uses of which addresses a rule covers: a set of [`SocketUse`]s, an
/// [`IpNet`] and a port range. Whether it allows or denies depends on the
/// list of a [`RuleSet`](super::RuleSet) it is in.
///
/// Written `[USES:]NET[:PORT[-PORT]]`, with USES a comma-separated list of
/// `bind`, `connect`, `send`, `receive` (or `all`, the default, which is
/// those four) and the extension uses `join`, `broadcast` and `share`
/// (granted only by name), and IPv6 networks in brackets when ports follow:
/// `send,connect:10.0.0.0/8:53`, `127.0.0.1`, `bind:0.0.0.0:5353`,
/// `receive:[fd00::/8]:5000-5100`, `join:224.0.0.251`.
/// [`spec`](Self::spec) writes a rule back in this form.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// The uses the rule covers, in [`SocketUse::ALL`]'s order.
    pub uses: Vec<SocketUse>,
    /// The addresses it covers.
    pub net: IpNet,
    /// The ports it covers (inclusive).
    pub ports: RangeInclusive<u16>,
}

impl Rule {
    /// A rule covering `uses` of `net` on `ports`.
    pub fn new(
        uses: impl IntoIterator<Item = SocketUse>,
        net: IpNet,
        ports: RangeInclusive<u16>,
    ) -> Self {
        let mut uses: Vec<SocketUse> = uses.into_iter().collect();
        uses.sort_by_key(|u| u.index());
        uses.dedup();
        Self { uses, net, ports }
    }

    /// Every basic use ([`SocketUse::BASIC`]) of every port in `net`.
    pub fn network(net: IpNet) -> Self {
        Self::new(SocketUse::BASIC, net, 0..=u16::MAX)
    }

    /// The narrowest rule that covers `socket_use` of `addr`: that host and
    /// port, or that host on any port for `receive` (sources send from ports
    /// they choose) and `join` (a group membership has no port).
    pub fn exactly(socket_use: SocketUse, addr: SocketAddr) -> Self {
        let ports = match socket_use {
            SocketUse::Receive | SocketUse::Join => 0..=u16::MAX,
            _ => addr.port()..=addr.port(),
        };
        Self::new([socket_use], IpNet::host(addr.ip()), ports)
    }

    /// Whether the rule covers `socket_use` of `addr`.
    pub fn matches(&self, socket_use: SocketUse, addr: SocketAddr) -> bool {
        self.uses.contains(&socket_use)
            && self.net.contains(addr.ip())
            && self.ports.contains(&addr.port())
    }

    /// The rule in the form it is parsed from, e.g. `send:10.0.0.53:53` or
    /// `receive:[fd00::/8]`.
    pub fn spec(&self) -> String {
        let mut text = String::new();
        if self.uses != SocketUse::BASIC {
            let uses: Vec<&str> = self.uses.iter().map(|u| u.name()).collect();
            text.push_str(&uses.join(","));
            text.push(':');
        }
        let net = if self.net.is_host() {
            self.net.addr.to_string()
        } else {
            self.net.to_string()
        };
        let ports = match (*self.ports.start(), *self.ports.end()) {
            (0, u16::MAX) => None,
            (a, b) if a == b => Some(a.to_string()),
            (a, b) => Some(format!("{a}-{b}")),
        };
        match (self.net.addr.is_ipv6(), ports) {
            (false, None) => text.push_str(&net),
            (false, Some(ports)) => text.push_str(&format!("{net}:{ports}")),
            // Brackets keep an IPv6 network apart from its ports; without
            // ports they are still accepted, and make the text read the same.
            (true, None) => text.push_str(&format!("[{net}]")),
            (true, Some(ports)) => text.push_str(&format!("[{net}]:{ports}")),
        }
        text
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uses == SocketUse::BASIC {
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

const VALID_USES: &str = "bind, connect, send, receive, all, join, broadcast, share";

/// `bind,send` → the uses. `Ok(None)` when `s` is not meant as uses (a word
/// that is part of an IPv6 address); an error names a misspelled use.
fn parse_uses(head: &str, whole: &str) -> Result<Option<Vec<SocketUse>>, ParseRuleError> {
    let names: Vec<&str> = head.split(',').collect();
    let known = |name: &str| name == "all" || name == "*" || SocketUse::from_name(name).is_some();
    if names.iter().all(|name| known(name)) {
        let mut uses = Vec::new();
        for name in names {
            match SocketUse::from_name(name) {
                Some(socket_use) => uses.push(socket_use),
                None => uses.extend(SocketUse::BASIC),
            }
        }
        uses.sort_by_key(|u| u.index());
        uses.dedup();
        return Ok(Some(uses));
    }
    // A head of letters alone, or a list, is meant as uses, unless the
    // whole rule reads as an address (`bad::1`, `face:b00c::/32`).
    let looks_like_uses = names.len() > 1
        || (!head.is_empty() && head.chars().all(|c| c.is_ascii_alphabetic() || c == '-'));
    if looks_like_uses && parse_address(whole).is_err() {
        let unknown = names.iter().find(|name| !known(name)).unwrap_or(&head);
        return Err(ParseRuleError::new(format!(
            "`{whole}`: unknown use `{unknown}` (valid uses: {VALID_USES})"
        )));
    }
    Ok(None)
}

impl FromStr for Rule {
    type Err = ParseRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseRuleError::new("empty rule"));
        }
        let (uses, address) = match s.split_once(':') {
            Some((head, rest)) if !s.starts_with('[') => match parse_uses(head, s)? {
                Some(uses) => (uses, rest),
                None => (SocketUse::BASIC.to_vec(), s),
            },
            _ => (SocketUse::BASIC.to_vec(), s),
        };
        if uses.is_empty() {
            return Err(ParseRuleError::new(format!("`{s}`: no uses")));
        }
        let (net, ports) = parse_address(address).map_err(|e| e.in_rule(s))?;
        Ok(Self { uses, net, ports })
    }
}

/// `NET[:PORTS]`, `[NET]` or `[NET]:PORTS`.
fn parse_address(s: &str) -> Result<(IpNet, RangeInclusive<u16>), ParseRuleError> {
    let all_ports = 0..=u16::MAX;
    if let Some(rest) = s.strip_prefix('[') {
        let (net, after) = rest
            .split_once(']')
            .ok_or_else(|| ParseRuleError::new("missing `]`"))?;
        let ports = match after {
            "" => all_ports,
            _ => match after.strip_prefix(':') {
                Some(ports) => parse_ports(ports)?,
                None => return Err(ParseRuleError::new("expected `:PORT` after `]`")),
            },
        };
        return Ok((net.parse()?, ports));
    }
    match s.matches(':').count() {
        0 => Ok((s.parse()?, all_ports)),
        1 => {
            let (net, ports) = s.split_once(':').unwrap_or((s, ""));
            let net: IpNet = net.parse()?;
            Ok((net, parse_ports(ports)?))
        }
        _ => {
            // A bare IPv6 network: brackets are required as soon as ports
            // could be meant.
            if let Some((_, prefix)) = s.split_once('/')
                && prefix.contains(':')
            {
                let (net, ports) = s.rsplit_once(':').unwrap_or((s, ""));
                return Err(ParseRuleError::new(format!(
                    "an IPv6 network with ports needs brackets: `[{net}]:{ports}`"
                )));
            }
            if let Some((addr, port)) = s.rsplit_once(':')
                && addr.parse::<Ipv6Addr>().is_ok()
                && parse_ports(port).is_ok()
            {
                return Err(ParseRuleError::new(format!(
                    "`{s}` is ambiguous: write `[{addr}]:{port}` for port {port} of {addr}, \
                     or `[{s}]` for the address {s}"
                )));
            }
            Ok((s.parse()?, all_ports))
        }
    }
}

fn parse_ports(s: &str) -> Result<RangeInclusive<u16>, ParseRuleError> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| ParseRuleError::new(format!("`{p}` is not a port number")))
    };
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if start > end {
        return Err(ParseRuleError::new(format!("port range `{s}` is empty")));
    }
    Ok(start..=end)
}

/// Why a rule did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRuleError(String);

impl ParseRuleError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn in_rule(self, rule: &str) -> Self {
        if self.0.contains(&format!("`{rule}`")) {
            self
        } else {
            Self(format!("`{rule}`: {}", self.0))
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseRuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn error(rule: &str) -> String {
        rule.parse::<Rule>().expect_err(rule).to_string()
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
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope/8".parse::<IpNet>().is_err());
    }

    #[test]
    fn host_bits_under_a_prefix_are_refused() {
        let message = "10.0.0.1/0"
            .parse::<IpNet>()
            .expect_err("host bits")
            .to_string();
        assert!(message.contains("write `0.0.0.0/0`"), "{message}");
        assert!(
            message.contains("`10.0.0.1` for the single host"),
            "{message}"
        );
        assert!("10.1.2.3/8".parse::<IpNet>().is_err());
        assert!("fd00::1/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/8".parse::<IpNet>().is_ok());
        assert!(error("10.0.0.1/0").contains("bits set beyond the prefix"));
    }

    #[test]
    fn ipv4_mapped_rules_are_refused_with_the_ipv4_form() {
        let message = error("::ffff:10.0.0.5");
        assert!(message.contains("IPv4-mapped"), "{message}");
        assert!(message.contains("write `10.0.0.5`"), "{message}");
        assert!(error("[::ffff:10.0.0.0/104]").contains("write `10.0.0.0/8`"));
        // Wider networks that merely contain the mapped range are fine.
        assert!("::/0".parse::<Rule>().is_ok());
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
        let rule: Rule = "[::1]".parse().expect("rule");
        assert!(rule.matches(SocketUse::Bind, addr("[::1]:1")));
        let rule: Rule = "192.168.0.1".parse().expect("rule");
        assert!(rule.matches(SocketUse::Connect, addr("192.168.0.1:9")));
        assert!("10.0.0.0/8:9-1".parse::<Rule>().is_err());
        assert!("10.0.0.0/8:x".parse::<Rule>().is_err());
        assert!("[::1:5".parse::<Rule>().is_err());
        assert!("".parse::<Rule>().is_err());
    }

    #[test]
    fn a_bare_ipv6_address_that_could_end_in_a_port_asks_for_brackets() {
        let message = error("::1:53");
        assert!(message.contains("ambiguous"), "{message}");
        assert!(message.contains("`[::1]:53`"), "{message}");
        assert!(message.contains("`[::1:53]`"), "{message}");
        assert!(error("send:fe80::1:2").contains("`[fe80::1]:2`"));
        assert!(error("fd00::/8:53").contains("`[fd00::/8]:53`"));
        // Unambiguous forms.
        let rule: Rule = "[::1]:53".parse().expect("rule");
        assert_eq!(rule.ports, 53..=53);
        let rule: Rule = "[::1:53]".parse().expect("rule");
        assert!(rule.net.contains("::1:53".parse().expect("ip")));
        for fine in ["2001:db8::1", "fe80::1", "::", "fd00::/8", "bind:::"] {
            fine.parse::<Rule>()
                .unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn extension_uses_are_granted_only_by_name() {
        let rule: Rule = "join:224.0.0.251".parse().expect("rule");
        assert!(rule.matches(SocketUse::Join, addr("224.0.0.251:0")));
        assert!(rule.matches(SocketUse::Join, addr("224.0.0.251:5353")));
        assert!(!rule.matches(SocketUse::Send, addr("224.0.0.251:5353")));
        assert_eq!(rule.spec(), "join:224.0.0.251");
        assert_eq!(rule.to_string(), "join 224.0.0.251/32");
        let rule: Rule = "share,bind:0.0.0.0:5353".parse().expect("rule");
        assert_eq!(rule.uses, [SocketUse::Bind, SocketUse::Share]);
        assert_eq!(rule.spec(), "bind,share:0.0.0.0:5353");
        let rule: Rule = "broadcast,send:10.0.0.255".parse().expect("rule");
        assert!(rule.matches(SocketUse::Broadcast, addr("10.0.0.255:9")));
        // `all`, or no uses, is the four of wasi:sockets/udp, never the
        // extensions.
        for text in ["all:0.0.0.0/0", "0.0.0.0/0"] {
            let rule: Rule = text.parse().expect("rule");
            assert_eq!(rule.uses, SocketUse::BASIC, "{text}");
            for extension in [SocketUse::Join, SocketUse::Broadcast, SocketUse::Share] {
                assert!(!rule.matches(extension, addr("224.0.0.251:5353")), "{text}");
            }
        }
        let mut every: Rule = "all,join,broadcast,share:10.0.0.0/8".parse().expect("rule");
        assert_eq!(every.uses, SocketUse::ALL);
        assert_eq!(every.spec().parse::<Rule>().expect("round trip"), every);
        every = Rule::exactly(SocketUse::Join, addr("239.1.2.3:5000"));
        assert_eq!(every.spec(), "join:239.1.2.3");
        let error = "jion:224.0.0.251".parse::<Rule>().expect_err("misspelled");
        assert!(
            error.message().contains("join, broadcast, share"),
            "{error}"
        );
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
        assert_eq!(rule.uses, SocketUse::BASIC);
        // Hex that is not a use name is an IPv6 address, not uses.
        let rule: Rule = "bad::1".parse().expect("rule");
        assert!(rule.matches(SocketUse::Send, addr("[bad::1]:1")));
    }

    #[test]
    fn a_misspelled_use_is_named_as_a_use() {
        for (rule, unknown) in [
            ("sned:10.0.0.0/8", "sned"),
            ("send,recv:127.0.0.1", "recv"),
            ("recieve:127.0.0.1:53", "recieve"),
            ("add:10.0.0.1", "add"),
        ] {
            let message = error(rule);
            assert!(
                message.contains(&format!("unknown use `{unknown}`")),
                "{rule}: {message}"
            );
            assert!(
                message.contains("bind, connect, send, receive"),
                "{message}"
            );
        }
    }

    #[test]
    fn specs_parse_back_to_the_same_rule() {
        for text in [
            "send:10.0.0.53:53",
            "connect,send:10.0.0.0/8:53",
            "receive:[fd00::/8]:5000-5100",
            "bind:[::]:0",
            "127.0.0.0/8",
            "receive:[2001:db8::1]",
        ] {
            let rule: Rule = text.parse().expect(text);
            assert_eq!(rule.spec(), text);
            assert_eq!(rule.spec().parse::<Rule>().expect("reparse"), rule);
        }
        assert_eq!(
            Rule::exactly(SocketUse::Receive, addr("10.0.0.2:40000")).spec(),
            "receive:10.0.0.2"
        );
        assert_eq!(
            Rule::exactly(SocketUse::Send, addr("[::1]:53")).spec(),
            "send:[::1]:53"
        );
    }
}
