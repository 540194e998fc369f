//! What `wasi-udp:extensions` adds to a socket: multicast groups, broadcast
//! and shared ports. Same order as the rest of the state machine: the
//! checks the WIT text names, then the policy, then the network.
//!
//! Invariants:
//! - `shared_port` is what the network socket was last told, and can change
//!   only while the socket is unbound;
//! - `broadcast_enabled` is what the network socket was last told;
//! - a membership reaches the network only after the policy granted `join`
//!   for its group.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{BindState, UdpSocket, option_result, refuse};
use crate::backend::{Family, Membership};
use crate::ctx::StoreShared;
use crate::error::{Code, Operation, UdpResult, code_from_io};
use crate::policy::SocketUse;

/// A join the policy must decide, which may wait.
pub(crate) struct JoinQuestion {
    shared: Arc<StoreShared>,
    membership: Membership,
}

/// Proof that the policy allowed joining a group: the only way to reach the
/// join syscall.
pub(crate) struct ApprovedJoin(Membership);

impl JoinQuestion {
    /// Asks whether the socket may join the group.
    pub(crate) async fn approve(self) -> UdpResult<ApprovedJoin> {
        let group = SocketAddr::new(self.membership.group, 0);
        let policy = self.shared.policy.clone();
        match policy.check_async(SocketUse::Join, group).await {
            Ok(()) => Ok(ApprovedJoin(self.membership)),
            Err(denial) => Err(refuse(&self.shared, SocketUse::Join, group, &denial)),
        }
    }
}

impl UdpSocket {
    /// `shared-port`.
    pub(crate) fn shared_port(&self) -> bool {
        self.shared_port
    }

    /// `set-shared-port`.
    pub(crate) fn set_shared_port(&mut self, shared: bool) -> UdpResult<()> {
        // udp-extensions.wit: "invalid-state: `set-shared-port` after
        // `start-bind`": the kernel decides sharing at bind.
        if self.state != BindState::Unbound {
            return Err(Code::InvalidState.into());
        }
        self.core
            .io
            .set_shared_port(shared)
            .map_err(|e| code_from_io(&e, Operation::Option))?;
        self.shared_port = shared;
        Ok(())
    }

    /// `join-multicast-group` and `join-source-specific-group`, first step:
    /// the argument checks, then the policy question to ask.
    pub(crate) fn prepare_join(&self, membership: Membership) -> UdpResult<JoinQuestion> {
        self.validate_membership(&membership)?;
        Ok(JoinQuestion {
            shared: self.core.shared.clone(),
            membership,
        })
    }

    /// Joins, once the policy allowed it (the arguments were checked
    /// before the question was asked, and cannot change meanwhile).
    pub(crate) fn join(&self, approved: ApprovedJoin) -> UdpResult<()> {
        self.core
            .io
            .join_group(&approved.0)
            .map_err(|e| code_from_io(&e, Operation::Membership).into())
    }

    /// `leave-multicast-group` and `leave-source-specific-group`: leaving
    /// needs no grant.
    pub(crate) fn leave(&self, membership: Membership) -> UdpResult<()> {
        self.validate_membership(&membership)?;
        self.core
            .io
            .leave_group(&membership)
            .map_err(|e| code_from_io(&e, Operation::Membership).into())
    }

    /// udp-extensions.wit: "invalid-argument: an address of the other
    /// family than the socket's; a group that is not a multicast address;
    /// a source that is a multicast or unspecified address".
    fn validate_membership(&self, membership: &Membership) -> UdpResult<()> {
        let family = self.core.family;
        let of_family = |ip: IpAddr| match ip {
            IpAddr::V4(_) => family == Family::Ipv4,
            IpAddr::V6(_) => family == Family::Ipv6,
        };
        if !of_family(membership.group) || !membership.group.is_multicast() {
            return Err(Code::InvalidArgument.into());
        }
        if let Some(source) = membership.source
            && (!of_family(source) || source.is_multicast() || source.is_unspecified())
        {
            return Err(Code::InvalidArgument.into());
        }
        Ok(())
    }

    /// `multicast-hop-limit`.
    pub(crate) fn multicast_hop_limit(&self) -> UdpResult<u8> {
        option_result(self.core.io.multicast_hop_limit())
    }

    /// `set-multicast-hop-limit`: 0 is valid here (the datagrams stay on
    /// the host), unlike the unicast hop limit.
    pub(crate) fn set_multicast_hop_limit(&self, value: u8) -> UdpResult<()> {
        option_result(self.core.io.set_multicast_hop_limit(value))
    }

    /// `multicast-loopback`.
    pub(crate) fn multicast_loopback(&self) -> UdpResult<bool> {
        option_result(self.core.io.multicast_loopback())
    }

    /// `set-multicast-loopback`.
    pub(crate) fn set_multicast_loopback(&self, enabled: bool) -> UdpResult<()> {
        option_result(self.core.io.set_multicast_loopback(enabled))
    }

    /// `set-multicast-interface`.
    pub(crate) fn set_multicast_interface(&self, index: u32) -> UdpResult<()> {
        self.core
            .io
            .set_multicast_interface(index)
            // Linux answers an unknown IPv4 interface with EADDRNOTAVAIL
            // and an IPv6 one with ENODEV: both invalid-argument here.
            .map_err(|e| code_from_io(&e, Operation::Option).into())
    }

    /// `broadcast`.
    pub(crate) fn broadcast(&self) -> UdpResult<bool> {
        option_result(self.core.io.broadcast())
    }

    /// `set-broadcast`. Enabling asks nothing of the policy: each send to
    /// a broadcast address does.
    pub(crate) fn set_broadcast(&self, enabled: bool) -> UdpResult<()> {
        option_result(self.core.io.set_broadcast(enabled))?;
        self.core
            .broadcast_enabled
            .store(enabled, Ordering::Relaxed);
        Ok(())
    }
}
