//! Who a socket talks to: when two addresses are the same peer, and the
//! bounded set of peers a socket may hear replies from.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

/// Whether `a` and `b` name the same peer: the same address and port, and
/// for IPv6 the same scope where the scope means something (link-local
/// addresses). The flow label never counts: the kernel reports received
/// datagrams with flow-info 0 whatever the guest passed when connecting.
pub(crate) fn same_peer(a: SocketAddr, b: SocketAddr) -> bool {
    peer_key(a) == peer_key(b)
}

/// `addr` with what does not identify a peer cleared: the flow label, and
/// the scope id of addresses whose scope is global.
pub(crate) fn peer_key(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(v6) => {
            let scope_id = if scope_matters(*v6.ip()) {
                v6.scope_id()
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope_id))
        }
    }
}

fn scope_matters(ip: Ipv6Addr) -> bool {
    ip.is_unicast_link_local()
        // Interface- and link-local multicast scopes (ff01::/16, ff02::/16).
        || (ip.is_multicast() && (ip.segments()[0] & 0x000f) <= 2)
}

/// The peers a socket was allowed to send to, whose replies it may receive
/// without a `receive` rule. Bounded: past `capacity`, the peer sent to
/// longest ago is forgotten (its replies then need a `receive` rule, and
/// their drops say so).
#[derive(Debug)]
pub(crate) struct ReplyPeers {
    capacity: usize,
    /// Peer → when it was last sent to, in sends counted by `clock`.
    peers: HashMap<SocketAddr, u64>,
    clock: u64,
}

impl ReplyPeers {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            peers: HashMap::new(),
            clock: 0,
        }
    }

    /// The socket was allowed to send to `peer`.
    pub(crate) fn note(&mut self, peer: SocketAddr) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        let key = peer_key(peer);
        if let Some(last) = self.peers.get_mut(&key) {
            *last = self.clock;
            return;
        }
        if self.peers.len() >= self.capacity
            && let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, last)| **last)
                .map(|(peer, _)| *peer)
        {
            self.peers.remove(&oldest);
        }
        self.peers.insert(key, self.clock);
    }

    /// Whether a datagram from `source` is a reply to this socket.
    pub(crate) fn contains(&self, source: SocketAddr) -> bool {
        self.peers.contains_key(&peer_key(source))
    }

    /// How many peers are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether remembering one more peer forgets one.
    pub(crate) fn is_full(&self) -> bool {
        self.peers.len() >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn flow_info_never_makes_a_different_peer() {
        let with_flow = SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::1".parse().expect("ip"),
            53,
            0xabcde,
            0,
        ));
        assert!(same_peer(with_flow, addr("[2001:db8::1]:53")));
        assert!(!same_peer(with_flow, addr("[2001:db8::1]:54")));
        assert!(!same_peer(addr("127.0.0.1:53"), addr("127.0.0.2:53")));
    }

    #[test]
    fn scope_counts_for_link_local_addresses_only() {
        let link = |scope| {
            SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().expect("ip"),
                9,
                0,
                scope,
            ))
        };
        assert!(!same_peer(link(1), link(2)));
        assert!(same_peer(link(2), link(2)));
        let global = |scope| {
            SocketAddr::V6(SocketAddrV6::new(
                "2001:db8::1".parse().expect("ip"),
                9,
                0,
                scope,
            ))
        };
        assert!(same_peer(global(1), global(0)));
    }

    #[test]
    fn reply_peers_are_bounded_and_forget_the_oldest() {
        let mut peers = ReplyPeers::new(2);
        peers.note(addr("10.0.0.1:53"));
        peers.note(addr("10.0.0.2:53"));
        peers.note(addr("10.0.0.1:53"));
        peers.note(addr("10.0.0.3:53"));
        assert_eq!(peers.len(), 2);
        assert!(
            peers.contains(addr("10.0.0.1:53")),
            "sent to most recently but one"
        );
        assert!(
            !peers.contains(addr("10.0.0.2:53")),
            "the oldest is forgotten"
        );
        assert!(peers.contains(addr("10.0.0.3:53")));
        assert!(
            !peers.contains(addr("10.0.0.3:54")),
            "another port is another peer"
        );
        let mut none = ReplyPeers::new(0);
        none.note(addr("10.0.0.1:53"));
        assert!(!none.contains(addr("10.0.0.1:53")));
    }
}
