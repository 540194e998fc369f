//! `wasi-udp-bench`: runs the `bench_*` guest workloads on this provider and
//! on wasmtime-wasi's builtin UDP in one process, and the same patterns
//! natively (one syscall per datagram; `sendmmsg`/`recvmmsg` batches;
//! segmented sends, UDP GSO, received with `recvmmsg` or coalesced with UDP
//! GRO: the ceilings), alternating runs, and prints medians, min/max and
//! ratios as a markdown table.
//!
//! `cargo run --release -p wasi-udp-bench -- [--quick] [--only NAME] [--variants LIST]`
//!
//! Memory workloads run in a child process each (the same binary with
//! `--child`), so that one run's peak resident set cannot hide another's.

#![forbid(unsafe_code)]

mod native;
mod stores;

use std::process::Command;
use std::time::{Duration, Instant};

use wasi_udp_conformance::hosts::{Against, Exit};
use wasi_udp_conformance::suite::Needs;

/// What one blast run achieved.
pub struct BlastResult {
    /// Datagrams that arrived.
    pub received: u64,
    /// From the first send to the last receive.
    pub elapsed: Duration,
}

/// Where a workload runs: a column of the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Ours,
    WasmtimeWasi,
    Native,
    NativeMmsg,
    /// Segmented sends (UDP GSO), `recvmmsg` receives.
    NativeGso,
    /// Segmented sends, coalesced receives (UDP GRO).
    NativeGro,
    /// As `NativeGro`, through quinn-udp.
    NativeQuinn,
    /// This provider on its simulated network (no faults): what the
    /// provider costs without a kernel.
    Sim,
}

const VARIANTS: [Variant; 8] = [
    Variant::Ours,
    Variant::WasmtimeWasi,
    Variant::Native,
    Variant::NativeMmsg,
    Variant::NativeGso,
    Variant::NativeGro,
    Variant::NativeQuinn,
    Variant::Sim,
];

/// The columns `ours` is divided by, in the table's order.
const COMPARED: [Variant; 5] = [
    Variant::WasmtimeWasi,
    Variant::Native,
    Variant::NativeMmsg,
    Variant::NativeGso,
    Variant::NativeGro,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::WasmtimeWasi => "wasmtime-wasi",
            Self::Native => "native",
            Self::NativeMmsg => "native-mmsg",
            Self::NativeGso => "native-gso",
            Self::NativeGro => "native-gro",
            Self::NativeQuinn => "native-quinn",
            Self::Sim => "sim",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        VARIANTS.into_iter().find(|v| v.name() == name)
    }

    fn index(self) -> usize {
        VARIANTS
            .iter()
            .position(|v| *v == self)
            .expect("every variant is listed")
    }
}

/// A workload and its size.
#[derive(Clone, Copy)]
enum Kind {
    Blast {
        count: u64,
        size: usize,
        window: u64,
    },
    PingPong {
        rounds: usize,
    },
    /// Single host calls, timed in a row.
    Calls {
        iterations: u64,
    },
    ManySockets {
        count: usize,
    },
    Idle {
        count: usize,
    },
    ManyStores {
        stores: usize,
        rounds: usize,
    },
}

/// One row of the table: what a metric is called and which way is better.
struct Metric {
    name: &'static str,
    higher_is_better: bool,
}

impl Kind {
    fn name(self) -> String {
        match self {
            Self::Blast {
                size, window: 0, ..
            } => format!("blast {size} B unwindowed"),
            Self::Blast { size, window, .. } => format!("blast {size} B window {window}"),
            Self::PingPong { .. } => "pingpong 64 B".into(),
            Self::Calls { .. } => "calls".into(),
            Self::ManySockets { count } => format!("many-sockets {count}"),
            Self::Idle { count } => format!("idle {count}"),
            Self::ManyStores { stores, .. } => format!("stores {stores}"),
        }
    }

    fn metrics(self) -> &'static [Metric] {
        const fn m(name: &'static str, higher_is_better: bool) -> Metric {
            Metric {
                name,
                higher_is_better,
            }
        }
        const BLAST: &[Metric] = &[
            m("dgram/s", true),
            m("MB/s", true),
            m("lost", false),
            m("CPU µs/dgram", false),
        ];
        const PINGPONG: &[Metric] = &[m("median µs", false), m("p99 µs", false)];
        // Natively: `Instant::now`, nothing, `recvfrom` finding nothing,
        // `send` and `recv`.
        const CALLS: &[Metric] = &[
            m("clock ns", false),
            m("check-send ns", false),
            m("empty receive ns", false),
            m("leg ns", false),
        ];
        const MANY_SOCKETS: &[Metric] = &[m("wall ms", false), m("peak RSS MiB", false)];
        const IDLE: &[Metric] = &[m("KiB/socket", false)];
        const STORES: &[Metric] = &[
            m("round trips/s", true),
            m("per-store min rt/s", true),
            m("per-store median rt/s", true),
            m("per-store max rt/s", true),
            m("p99 µs", false),
            m("peak RSS MiB", false),
        ];
        match self {
            Self::Blast { .. } => BLAST,
            Self::PingPong { .. } => PINGPONG,
            Self::Calls { .. } => CALLS,
            Self::ManySockets { .. } => MANY_SOCKETS,
            Self::Idle { .. } => IDLE,
            Self::ManyStores { .. } => STORES,
        }
    }

    fn runs_on(self, variant: Variant) -> bool {
        match (self, variant) {
            (Self::Blast { .. } | Self::PingPong { .. } | Self::Calls { .. }, Variant::Sim) => {
                return true;
            }
            (_, Variant::Sim) => return false,
            _ => {}
        }
        match self {
            Self::Blast { .. } => true,
            // Stores are guests' business.
            Self::ManyStores { .. } => matches!(variant, Variant::Ours | Variant::WasmtimeWasi),
            // Batching has nothing to batch in the other workloads.
            _ => !matches!(
                variant,
                Variant::NativeMmsg
                    | Variant::NativeGso
                    | Variant::NativeGro
                    | Variant::NativeQuinn
            ),
        }
    }
}

fn guest_path(name: &str) -> &'static str {
    guest_artifacts::ALL
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest {name}"))
}

/// Median and p99 of `rtts_ns`, sorted in place.
pub fn latency_sample(rtts_ns: &mut [f64]) -> (f64, f64) {
    rtts_ns.sort_by(f64::total_cmp);
    let at = |q: f64| rtts_ns[((rtts_ns.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Nanoseconds to microseconds.
pub fn rtts_summary((median, p99): (f64, f64)) -> (f64, f64) {
    (median / 1000.0, p99 / 1000.0)
}

/// User plus system CPU time this process has used.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// The blast metrics from a run.
fn blast_metrics(kind: Kind, result: &BlastResult, cpu: Duration) -> Vec<f64> {
    let Kind::Blast { count, size, .. } = kind else {
        unreachable!("blast metrics of a blast")
    };
    let seconds = result.elapsed.as_secs_f64();
    let rate = result.received as f64 / seconds;
    vec![
        rate,
        rate * size as f64 / 1e6,
        (count - result.received) as f64,
        cpu.as_secs_f64() * 1e6 / result.received.max(1) as f64,
    ]
}

/// The last line a guest printed, as `name value` pairs.
fn guest_fields(stdout: &str) -> Vec<(String, String)> {
    let line = stdout.lines().last().unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> Option<f64> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// Runs `kind` once on a guest host, in this process.
fn run_in_process(kind: Kind, host: &Against) -> Result<Vec<f64>, String> {
    let (guest, args) = match kind {
        Kind::Blast {
            count,
            size,
            window,
        } => (
            "bench_blast",
            vec![count.to_string(), size.to_string(), window.to_string()],
        ),
        Kind::PingPong { rounds } => ("bench_pingpong", vec![rounds.to_string()]),
        Kind::Calls { iterations } => ("bench_calls", vec![iterations.to_string()]),
        Kind::ManySockets { .. } | Kind::Idle { .. } | Kind::ManyStores { .. } => {
            unreachable!("child workloads")
        }
    };
    let path = guest_path(guest);
    host.prepare(path)?;
    let cpu_before = cpu_time();
    let run = host.run(path, &args, Needs::Loopback);
    let cpu = cpu_time() - cpu_before;
    if run.exit != Exit::Code(0) {
        return Err(format!("{:?} {}", run.exit, run.stderr));
    }
    match kind {
        Kind::Blast { .. } => {
            let fields = guest_fields(&run.stdout);
            let received = field(&fields, "received").ok_or("no `received` printed")?;
            let elapsed_ns = field(&fields, "elapsed_ns").ok_or("no `elapsed_ns` printed")?;
            let result = BlastResult {
                received: received as u64,
                elapsed: Duration::from_nanos(elapsed_ns as u64),
            };
            Ok(blast_metrics(kind, &result, cpu))
        }
        Kind::Calls { .. } => {
            let fields = guest_fields(&run.stdout);
            ["clock", "check-send", "empty-receive", "leg"]
                .iter()
                .map(|name| field(&fields, name).ok_or(format!("no `{name}` printed")))
                .collect()
        }
        _ => {
            let line = run.stdout.lines().last().unwrap_or_default();
            let mut rtts: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            if rtts.is_empty() {
                return Err("no round trips printed".into());
            }
            let (median, p99) = rtts_summary(latency_sample(&mut rtts));
            Ok(vec![median, p99])
        }
    }
}

/// Runs `kind` once natively, in this process.
fn run_native(kind: Kind, variant: Variant) -> Vec<f64> {
    match kind {
        Kind::Blast {
            count,
            size,
            window,
        } => {
            let cpu_before = cpu_time();
            let result = match variant {
                Variant::NativeMmsg => native::blast_mmsg(count, size, window),
                Variant::NativeGso => native::blast_gso(count, size, window),
                Variant::NativeGro => native::blast_gro(count, size, window),
                Variant::NativeQuinn => native::blast_quinn(count, size, window),
                _ => native::blast(count, size, window),
            };
            blast_metrics(kind, &result, cpu_time() - cpu_before)
        }
        Kind::PingPong { rounds } => {
            let (median, p99) = native::pingpong(rounds);
            vec![median, p99]
        }
        Kind::Calls { iterations } => {
            let calls = native::calls(iterations);
            vec![calls.clock, f64::NAN, calls.empty_receive, calls.leg]
        }
        Kind::ManySockets { .. } | Kind::Idle { .. } | Kind::ManyStores { .. } => {
            unreachable!("child workloads")
        }
    }
}

/// Runs `count` sockets (exchanging or idle) on `variant` in a child
/// process; returns (wall ms, peak resident KiB during the workload).
fn run_child(variant: Variant, count: usize, exchange: bool) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args([
            "--child",
            variant.name(),
            &count.to_string(),
            if exchange { "1" } else { "0" },
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{}: {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let fields = guest_fields(&stdout);
    match (field(&fields, "wall_ms"), field(&fields, "peak_kib")) {
        (Some(wall), Some(peak)) => Ok((wall, peak)),
        _ => Err(format!("child printed {stdout}")),
    }
}

fn run_memory_workload(kind: Kind, variant: Variant) -> Result<Vec<f64>, String> {
    match kind {
        Kind::ManySockets { count } => {
            let (wall, peak) = run_child(variant, count, true)?;
            Ok(vec![wall, peak / 1024.0])
        }
        Kind::Idle { count } => {
            let (_, base) = run_child(variant, 0, false)?;
            let (_, peak) = run_child(variant, count, false)?;
            Ok(vec![(peak - base).max(0.0) / count as f64])
        }
        Kind::ManyStores { stores, rounds } => run_stores_child(variant, stores, rounds),
        _ => unreachable!("memory workloads only"),
    }
}

/// Runs the stores workload in a child process (`--stores VARIANT STORES
/// ROUNDS`), so that its peak memory is its own.
fn run_stores_child(variant: Variant, stores: usize, rounds: usize) -> Result<Vec<f64>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args([
            "--stores",
            variant.name(),
            &stores.to_string(),
            &rounds.to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let fields = guest_fields(&stdout);
    ["total", "min", "median", "max", "p99_us", "peak_kib"]
        .iter()
        .map(|name| {
            field(&fields, name)
                .map(|value| {
                    if *name == "peak_kib" {
                        value / 1024.0
                    } else {
                        value
                    }
                })
                .ok_or_else(|| format!("child printed {stdout}"))
        })
        .collect()
}

/// Child mode: `--stores VARIANT STORES ROUNDS`.
fn stores_child(args: &[String]) -> Result<(), String> {
    let [variant, stores, rounds] = args else {
        return Err("usage: --stores VARIANT STORES ROUNDS".into());
    };
    let ours = match variant.as_str() {
        "ours" => true,
        "wasmtime-wasi" => false,
        other => return Err(format!("unknown variant {other}")),
    };
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let result = stores::run(
        guest_path("bench_pingpong"),
        ours,
        stores.parse().map_err(|_| "STORES")?,
        rounds.parse().map_err(|_| "ROUNDS")?,
    )?;
    println!(
        "total {:.1} min {:.1} median {:.1} max {:.1} p99_us {:.1} peak_kib {}",
        result.total_rate,
        result.per_store.0,
        result.per_store.1,
        result.per_store.2,
        result.p99_us,
        result.peak_kib
    );
    Ok(())
}

/// `VmHWM`, the peak resident set, in KiB.
pub fn peak_resident_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Child mode: `--child VARIANT COUNT EXCHANGE`. Prints `wall_ms W
/// peak_kib P`, the peak measured from just before the workload starts
/// (after the guest is compiled).
fn child(args: &[String]) -> Result<(), String> {
    let [variant, count, exchange] = args else {
        return Err("usage: --child VARIANT COUNT EXCHANGE".into());
    };
    let variant = Variant::parse(variant).ok_or("unknown variant")?;
    let count: usize = count.parse().map_err(|_| "COUNT")?;
    let exchange = exchange == "1";
    // Every socket is a descriptor: let this process have as many as the
    // hard limit allows.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let host = match variant {
        Variant::Ours => Some(Against::parse("ours")?.with_socket_limit(count + 16)),
        Variant::WasmtimeWasi => Some(Against::parse("wasmtime-wasi")?),
        _ => None,
    };
    let path = guest_path("bench_many_sockets");
    if let Some(host) = &host {
        host.prepare(path)?;
    }
    // Linux resets VmHWM to the current resident set on "5" (proc(5)), so
    // compiling the guest does not count.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    match &host {
        Some(host) => {
            let args = [count.to_string(), (exchange as u8).to_string()];
            let run = host.run(path, &args, Needs::Loopback);
            if run.exit != Exit::Code(0) {
                return Err(format!("{:?} {}", run.exit, run.stderr));
            }
        }
        None => {
            native::many_sockets(count, exchange);
        }
    }
    let wall = start.elapsed();
    println!(
        "wall_ms {:.1} peak_kib {}",
        wall.as_secs_f64() * 1e3,
        peak_resident_kib()
    );
    Ok(())
}

/// Median, min and max of `values`; `None` if there are none (a NaN is a
/// metric the variant has no counterpart of).
fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some((
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    ))
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("wasi-udp-bench: {message}\n\n{USAGE}");
    std::process::exit(2);
}

/// Two decimals, or two significant digits for ratios below 0.01, which
/// two decimals would print as 0.00.
fn format_ratio(ratio: f64) -> String {
    if ratio >= 0.01 || ratio == 0.0 {
        format!("{ratio:.2}")
    } else {
        let decimals = (-ratio.log10()).ceil() as usize + 1;
        format!("{ratio:.decimals$}")
    }
}

const USAGE: &str = "usage: wasi-udp-bench [--quick] [--only NAME] [--variants LIST]

Runs each workload on this provider, wasmtime-wasi, native sockets (one
syscall per datagram; sendmmsg/recvmmsg; segmented sends with recvmmsg
or with coalesced receives, by hand and through quinn-udp) and the
simulated network, alternating, and
prints a markdown table of medians (min-max) and ratios.

  --quick           small counts and one repetition (a smoke run)
  --only NAME       only the workloads whose name starts with NAME
                    (blast, pingpong, calls, many-sockets, idle,
                    stores)
  --variants LIST   only these columns, comma-separated (ours,
                    wasmtime-wasi, native, native-mmsg, native-gso,
                    native-gro, native-quinn, sim); ratios need ours";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return;
    }
    if args.first().map(String::as_str) == Some("--stores") {
        if let Err(error) = stores_child(&args[1..]) {
            eprintln!("wasi-udp-bench stores: {error}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--child") {
        if let Err(error) = child(&args[1..]) {
            eprintln!("wasi-udp-bench child: {error}");
            std::process::exit(1);
        }
        return;
    }
    let mut quick = false;
    let mut only = None;
    let mut chosen: Vec<Variant> = VARIANTS.to_vec();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => match rest.next() {
                Some(name) => only = Some(name),
                None => usage_error("--only needs a workload name"),
            },
            "--variants" => match rest.next() {
                Some(list) => {
                    chosen = list
                        .split(',')
                        .map(|name| {
                            Variant::parse(name).unwrap_or_else(|| {
                                usage_error(&format!("no variant is named `{name}`"))
                            })
                        })
                        .collect();
                }
                None => usage_error("--variants needs a comma-separated list"),
            },
            other => usage_error(&format!("unexpected argument `{other}`")),
        }
    }
    let (count, rounds, sockets, repetitions) = if quick {
        (2_000, 200, 200, 1)
    } else {
        (200_000, 5_000, 10_000, 5)
    };
    let iterations = if quick { 1_000 } else { 100_000 };
    let (stores, store_rounds) = if quick { (20, 20) } else { (1_000, 100) };
    let blast = |size, window| Kind::Blast {
        count,
        size,
        window,
    };
    let kinds = [
        blast(64, 256),
        blast(1400, 256),
        blast(64, 0),
        Kind::PingPong { rounds },
        Kind::Calls { iterations },
        Kind::ManySockets { count: sockets },
        Kind::Idle { count: sockets },
        Kind::ManyStores {
            stores,
            rounds: store_rounds,
        },
    ];
    let hosts = [
        Against::parse("ours").expect("our host"),
        Against::parse("wasmtime-wasi").expect("wasmtime-wasi host"),
        Against::parse("sim").expect("the simulated host"),
    ];
    if let Some(only) = only
        && !kinds
            .iter()
            .any(|kind| kind.name().starts_with(only.as_str()))
    {
        usage_error(&format!("no workload is named `{only}`"));
    }

    let mut header = String::from("| workload | metric |");
    for variant in VARIANTS {
        header.push_str(&format!(" {} |", variant.name()));
    }
    for other in COMPARED {
        header.push_str(&format!(" ours/{} |", other.name()));
    }
    println!("{header}");
    println!("|{}", "---|".repeat(2 + VARIANTS.len() + COMPARED.len()));
    let mut headline = Vec::new();
    for kind in kinds {
        let name = kind.name();
        if only.is_some_and(|only| !name.starts_with(only.as_str())) {
            continue;
        }
        let memory = matches!(
            kind,
            Kind::ManySockets { .. } | Kind::Idle { .. } | Kind::ManyStores { .. }
        );
        let reps = if memory {
            repetitions.min(3)
        } else {
            repetitions
        };
        // samples[variant][metric] = one value per repetition.
        let mut samples: Vec<Vec<Vec<f64>>> =
            vec![vec![Vec::new(); kind.metrics().len()]; VARIANTS.len()];
        for _ in 0..reps {
            for (index, variant) in VARIANTS.into_iter().enumerate() {
                if !kind.runs_on(variant) || !chosen.contains(&variant) {
                    continue;
                }
                let result = match (memory, variant) {
                    (true, _) => run_memory_workload(kind, variant),
                    (false, Variant::Ours) => run_in_process(kind, &hosts[0]),
                    (false, Variant::WasmtimeWasi) => run_in_process(kind, &hosts[1]),
                    (false, Variant::Sim) => run_in_process(kind, &hosts[2]),
                    (false, _) => Ok(run_native(kind, variant)),
                };
                match result {
                    Ok(values) => {
                        for (metric, value) in values.into_iter().enumerate() {
                            samples[index][metric].push(value);
                        }
                    }
                    Err(error) => eprintln!("run failed: {name} on {}: {error}", variant.name()),
                }
            }
        }
        for (metric_index, metric) in kind.metrics().iter().enumerate() {
            let medians: Vec<Option<(f64, f64, f64)>> = samples
                .iter()
                .map(|variant| summary(&variant[metric_index]))
                .collect();
            let cell = |summary: &Option<(f64, f64, f64)>| match summary {
                None => "–".to_string(),
                Some((median, min, max)) if reps > 1 => format!(
                    "{} ({}–{})",
                    format_value(*median),
                    format_value(*min),
                    format_value(*max)
                ),
                Some((median, _, _)) => format_value(*median),
            };
            let ours = medians[0].map(|(median, _, _)| median);
            let ratio = |other: &Option<(f64, f64, f64)>| match (ours, other) {
                (Some(ours), Some((other, _, _))) if *other != 0.0 => format_ratio(ours / other),
                _ => "–".to_string(),
            };
            let arrow = if metric.higher_is_better {
                "↑"
            } else {
                "↓"
            };
            let mut row = format!("| {name} | {} {arrow} |", metric.name);
            for summary in &medians {
                row.push_str(&format!(" {} |", cell(summary)));
            }
            for other in COMPARED {
                row.push_str(&format!(" {} |", ratio(&medians[other.index()])));
            }
            println!("{row}");
            let key = name.replace(' ', "");
            let mut add = |label: &str, other: Variant| {
                let value = ratio(&medians[other.index()]);
                if value != "–" {
                    headline.push(format!("{key}{label} ours/{}={value}", other.name()));
                }
            };
            use Variant::{Native, NativeGro, NativeGso, NativeMmsg, WasmtimeWasi};
            match (kind, metric.name) {
                (Kind::Blast { .. }, "dgram/s") => {
                    for other in [WasmtimeWasi, NativeMmsg, NativeGso, NativeGro] {
                        add("", other);
                    }
                }
                (Kind::Blast { .. }, "CPU µs/dgram") => {
                    add("-cpu", Native);
                    add("-cpu", NativeGso);
                }
                (Kind::PingPong { .. }, "median µs") => add("-median", Native),
                (Kind::PingPong { .. }, "p99 µs") => add("-p99", Native),
                (Kind::Calls { .. }, "leg ns") => add("-leg", Native),
                (Kind::ManySockets { .. }, "peak RSS MiB") => add("-rss", WasmtimeWasi),
                (Kind::Idle { .. }, _) => add("", WasmtimeWasi),
                (Kind::ManyStores { .. }, "round trips/s") => add("", WasmtimeWasi),
                (Kind::ManyStores { .. }, "p99 µs") => add("-p99", WasmtimeWasi),
                (Kind::ManyStores { .. }, "peak RSS MiB") => add("-rss", WasmtimeWasi),
                _ => {}
            }
        }
    }
    println!();
    println!(
        "{repetitions} repetition(s) (memory workloads: {}), in-process runs alternate {}; \
         each cell is the median (min–max); ratios are ours/other of the metric \
         (↑: higher is better, ↓: lower is better)",
        repetitions.min(3),
        chosen
            .iter()
            .map(|variant| variant.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{}", headline.join("  "));
}
