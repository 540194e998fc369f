//! The conformance guests and what each expects of a host.

/// What a guest's run must look like for the host to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exits 0.
    Pass,
    /// Traps after printing `marker` (the WIT says the host must trap there).
    Trap {
        /// Printed by the guest right before the call that must trap.
        marker: &'static str,
    },
    /// The WIT leaves it to the host: exit 0, or a trap after `marker`.
    PassOrTrap {
        /// Printed by the guest right before the call that may trap.
        marker: &'static str,
        /// The WIT sentence that allows both.
        wit: &'static str,
    },
}

/// Host configuration a guest relies on beyond loopback access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Loopback access only.
    Loopback,
    /// Binding (never sending) to TEST-NET-1, 192.0.2.0/24, is allowed, so
    /// the kernel's `address-not-bindable` is reachable.
    BindTestNet,
    /// The host refuses connect and send to 192.0.2.0/24 and bind to
    /// fe80::1 with `access-denied`.
    RefusesTestNet,
    /// Binding (never sending) to the link-local fe80::53 is allowed, so
    /// the kernel's answer to a link-local address without a scope id is
    /// reachable.
    BindLinkLocal,
    /// The host limits a store to this many sockets.
    SocketLimit(usize),
    /// Loopback queues datagrams (a rate-limited qdisc), so a full send
    /// buffer, and `check-send` returning 0, can happen.
    ShapedLoopback,
}

/// One conformance guest.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The guest's name (its file under `guest-tests/`).
    pub name: &'static str,
    /// What its run must look like.
    pub expect: Expect,
    /// What it needs of the host.
    pub needs: Needs,
}

const DROP_ORDER: &str = "WIT 0.2.1 says nothing of drop order for udp resources; \
    resource-table hosts may refuse to drop a parent before its children";

/// Every conformance guest: the `udp_` guests of `guest-tests/`.
pub fn cases() -> Vec<Case> {
    guest_artifacts::ALL
        .iter()
        .filter(|(name, _)| name.starts_with("udp_"))
        .map(|(name, _)| Case {
            name,
            expect: expectation(name),
            needs: needs(name),
        })
        .collect()
}

fn expectation(name: &str) -> Expect {
    match name {
        "udp_send_without_check_send" => Expect::Trap {
            marker: "about to send",
        },
        "udp_send_over_permit" => Expect::Trap {
            marker: "about to send",
        },
        "udp_send_spent_permit" => Expect::Trap {
            marker: "about to reuse",
        },
        "udp_send_empty_without_permit" => Expect::Trap {
            marker: "about to send nothing",
        },
        "udp_stream_while_streams_alive" => Expect::PassOrTrap {
            marker: "about to stream again",
            wit: "\"Implementations may trap if the streams returned by a previous invocation \
                  haven't been dropped yet before calling stream again.\"",
        },
        "udp_drop_socket_before_streams" => Expect::PassOrTrap {
            marker: "about to drop a socket before its streams",
            wit: DROP_ORDER,
        },
        "udp_drop_stream_before_pollable" => Expect::PassOrTrap {
            marker: "about to drop streams before their pollables",
            wit: DROP_ORDER,
        },
        "udp_drop_socket_before_its_pollable" => Expect::PassOrTrap {
            marker: "about to drop a socket before its pollable",
            wit: DROP_ORDER,
        },
        _ => Expect::Pass,
    }
}

fn needs(name: &str) -> Needs {
    match name {
        "udp_bind_not_bindable" => Needs::BindTestNet,
        "udp_access_denied" => Needs::RefusesTestNet,
        "udp_bind_link_local_without_scope" => Needs::BindLinkLocal,
        "udp_new_socket_limit" => Needs::SocketLimit(8),
        "udp_check_send_backpressure" => Needs::ShapedLoopback,
        _ => Needs::Loopback,
    }
}

impl Expect {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Expect::Pass => "exit 0".into(),
            Expect::Trap { marker } => format!("trap after \"{marker}\""),
            Expect::PassOrTrap { marker, .. } => format!("exit 0, or trap after \"{marker}\""),
        }
    }
}
