//! The network a run uses: the kernel's, or a simulated one with seeded
//! faults and virtual time; either possibly captured to a pcap file.

use std::sync::Arc;
use std::time::Duration;

use wasi_udp_host::{Capture, Faults, Network, OsNetwork, SimNetwork, SocketStatsSnapshot};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use crate::args::Args;

/// The network of a run, and what reports on it.
pub struct RunNetwork {
    pub network: Arc<dyn Network>,
    pub sim: Option<SimNetwork>,
    pub capture: Option<Capture>,
}

/// Whether `args` ask for the simulated network.
pub fn simulated(args: &Args) -> bool {
    args.network == "sim"
}

/// The flags that only mean something on the simulated network, if any is
/// given without it.
pub fn misplaced_flag(args: &Args) -> Option<&'static str> {
    if simulated(args) {
        return None;
    }
    [
        ("--loss", args.loss.is_some()),
        ("--duplicate", args.duplicate.is_some()),
        ("--reorder", args.reorder.is_some()),
        ("--delay", args.delay.is_some()),
        ("--mtu", args.mtu.is_some()),
        ("--rate", args.rate.is_some()),
        ("--sim-echo", !args.sim_echo.is_empty()),
    ]
    .into_iter()
    .find_map(|(flag, given)| given.then_some(flag))
}

/// The network the flags choose, for `--explain-policy`.
pub fn explain(args: &Args) -> String {
    let mut text = if simulated(args) {
        let mut shaped = Vec::new();
        let percent = |p: f64| format!("{:.1} %", p * 100.0);
        if let Some(p) = args.loss {
            shaped.push(format!("loss {}", percent(p)));
        }
        if let Some(p) = args.duplicate {
            shaped.push(format!("duplicate {}", percent(p)));
        }
        if let Some(p) = args.reorder {
            shaped.push(format!("reorder {}", percent(p)));
        }
        if let Some((low, high)) = args.delay {
            shaped.push(if low == high {
                format!("delay {} ms", low.as_millis())
            } else {
                format!("delay {}..{} ms", low.as_millis(), high.as_millis())
            });
        }
        if let Some(mtu) = args.mtu {
            shaped.push(format!("MTU {mtu} B"));
        }
        if let Some(rate) = args.rate {
            shaped.push(format!("{rate} datagrams/s per link"));
        }
        let faults = if shaped.is_empty() {
            "no faults".to_string()
        } else {
            shaped.join(", ")
        };
        let mut text = format!(
            "Network: simulated, seed {}, {faults}, virtual time; the guest is 10.0.0.2 and \
             fd00::2 besides loopback",
            args.seed
        );
        for address in &args.sim_echo {
            text.push_str(&format!("; echo server at {address}"));
        }
        text
    } else {
        "Network: the operating system's".to_string()
    };
    if let Some(path) = &args.pcap {
        text.push_str(&format!("\nCapture: every datagram to {}", path.display()));
    }
    text
}

/// The faults the flags describe.
pub fn faults(args: &Args) -> Faults {
    let mut faults = Faults::none();
    if let Some(p) = args.loss {
        faults = faults.loss(p);
    }
    if let Some(p) = args.duplicate {
        faults = faults.duplicate(p);
    }
    if let Some(p) = args.reorder {
        faults = faults.reorder(p);
    }
    if let Some((low, high)) = args.delay {
        faults = faults.delay(low, high);
    }
    if let Some(mtu) = args.mtu {
        faults = faults.mtu(usize::try_from(mtu).unwrap_or(usize::MAX));
    }
    if let Some(rate) = args.rate {
        faults = faults.rate(rate);
    }
    faults
}

/// Builds the run's network. Must run inside the runtime (the simulated
/// network and a virtual capture start their clocks now).
pub fn build(args: &Args) -> std::io::Result<RunNetwork> {
    let (network, sim): (Arc<dyn Network>, Option<SimNetwork>) = if simulated(args) {
        let sim = SimNetwork::new(args.seed);
        sim.set_faults(faults(args));
        for address in &args.sim_echo {
            sim.add_endpoint(*address, |payload, _| vec![payload.to_vec()]);
        }
        // The guest's node: loopback, and an address of each family for
        // what it sends elsewhere.
        let node = sim.node([
            "10.0.0.2".parse().expect("address"),
            "fd00::2".parse().expect("address"),
        ]);
        (Arc::new(node), Some(sim))
    } else {
        (Arc::new(OsNetwork), None)
    };
    let capture = match &args.pcap {
        Some(path) if sim.is_some() => Some(Capture::to_file_virtual(path)?),
        Some(path) => Some(Capture::to_file(path)?),
        None => None,
    };
    let network = match &capture {
        Some(capture) => capture.wrap(network),
        None => network,
    };
    Ok(RunNetwork {
        network,
        sim,
        capture,
    })
}

/// The guest's monotonic clock on tokio's (virtual, on a paused runtime)
/// time.
pub struct VirtualMonotonic(pub tokio::time::Instant);

impl HostMonotonicClock for VirtualMonotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The guest's wall clock on the same time, from a fixed start
/// (2026-01-01T00:00:00Z), so that a simulated run prints the same every
/// time.
pub struct VirtualWall(pub tokio::time::Instant);

impl HostWallClock for VirtualWall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(1_767_225_600) + self.0.elapsed()
    }
}

/// Prints every socket's counters, and the simulated network's, on stderr.
pub fn print_stats(sockets: &[SocketStatsSnapshot], sim: Option<&SimNetwork>) {
    eprintln!(
        "{:>6} {:<4} {:<24} {:<24} {:>8} {:>10} {:>8} {:>10} {:>7} {:>6} {:>8} {:>6}  errors",
        "socket",
        "ip",
        "local",
        "remote",
        "sent",
        "bytes",
        "received",
        "bytes",
        "dropped",
        "denied",
        "permits",
        "zero"
    );
    for socket in sockets {
        let address = |a: Option<std::net::SocketAddr>| a.map_or("-".into(), |a| a.to_string());
        let errors: Vec<String> = socket
            .errors
            .iter()
            .map(|(code, n)| format!("{code}:{n}"))
            .collect();
        eprintln!(
            "{:>6} {:<4} {:<24} {:<24} {:>8} {:>10} {:>8} {:>10} {:>7} {:>6} {:>8} {:>6}  {}",
            socket.handle,
            if socket.ipv6 { "v6" } else { "v4" },
            address(socket.local),
            address(socket.remote),
            socket.datagrams_sent,
            socket.bytes_sent,
            socket.datagrams_received,
            socket.bytes_received,
            socket.dropped,
            socket.denied,
            socket.permits_granted,
            socket.zero_permits,
            if errors.is_empty() {
                "-".into()
            } else {
                errors.join(" ")
            }
        );
    }
    if let Some(sim) = sim {
        let stats = sim.stats();
        eprintln!(
            "network: {} delivered, {} lost, {} duplicated, {} reordered, {} over the MTU, \
             {} partitioned, {} past their hop limit, {} to full queues, {} to closed ports, \
             {} to no host",
            stats.delivered,
            stats.lost,
            stats.duplicated,
            stats.reordered,
            stats.too_large_for_mtu,
            stats.partitioned,
            stats.hop_limit_exceeded,
            stats.queue_full,
            stats.port_unreachable,
            stats.no_such_host
        );
    }
}
