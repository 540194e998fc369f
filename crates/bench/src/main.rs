//! `wasi-udp-bench`: runs the `bench_*` guest workloads on this provider and
//! on wasmtime-wasi's builtin UDP in one process, and the same pattern
//! natively, alternating runs, and prints medians, min/max and ratios.
//!
//! `cargo run --release -p wasi-udp-bench -- [--quick]`

mod native;

use wasi_udp_conformance::hosts::{Against, Exit};
use wasi_udp_conformance::suite::Needs;

/// One measurement of one workload on one host.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Datagrams per second (blast) or median round trip in µs (pingpong).
    value: f64,
    /// Loss (blast) or p99 round trip in µs (pingpong).
    extra: f64,
}

struct Workload {
    name: String,
    /// Higher is better for `value` (datagrams/s) unless it is a latency.
    latency: bool,
    guest: &'static str,
    args: Vec<String>,
    native: Box<dyn Fn() -> Sample>,
}

fn guest_path(name: &str) -> &'static str {
    guest_artifacts::ALL
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest {name}"))
}

fn parse_guest(workload: &Workload, stdout: &str) -> Option<Sample> {
    let line = stdout.lines().last()?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    if workload.latency {
        let mut rtts: Vec<f64> = fields
            .get(1..)?
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect();
        Some(latency_sample(&mut rtts))
    } else {
        let received: f64 = fields.get(1)?.parse().ok()?;
        let elapsed_ns: f64 = fields.get(3)?.parse().ok()?;
        let count: f64 = workload.args[0].parse().ok()?;
        Some(Sample {
            value: received / (elapsed_ns / 1e9),
            extra: count - received,
        })
    }
}

/// Median and p99 (µs) of round-trip times in nanoseconds.
fn latency_sample(rtts_ns: &mut [f64]) -> Sample {
    rtts_ns.sort_by(f64::total_cmp);
    let at = |q: f64| rtts_ns[((rtts_ns.len() as f64 - 1.0) * q).round() as usize] / 1000.0;
    Sample {
        value: at(0.5),
        extra: at(0.99),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (count, rounds, repetitions) = if quick {
        (2_000, 200, 1)
    } else {
        (200_000, 5_000, 5)
    };
    let blast = |size: usize, window: u64| Workload {
        name: format!(
            "blast {size} B{}",
            if window == 0 {
                " unwindowed".to_string()
            } else {
                format!(" window {window}")
            }
        ),
        latency: false,
        guest: "bench_blast",
        args: vec![count.to_string(), size.to_string(), window.to_string()],
        native: Box::new(move || native::blast(count, size, window)),
    };
    let workloads = vec![
        blast(64, 256),
        blast(1400, 256),
        blast(64, 0),
        Workload {
            name: "pingpong 64 B".into(),
            latency: true,
            guest: "bench_pingpong",
            args: vec![rounds.to_string()],
            native: Box::new(move || native::pingpong(rounds)),
        },
    ];
    let hosts = [
        Against::parse("ours").expect("our host"),
        Against::parse("wasmtime-wasi").expect("wasmtime-wasi host"),
    ];

    println!("| workload | ours | wasmtime-wasi | native | ours/wasmtime-wasi | ours/native |");
    println!("|---|---|---|---|---|---|");
    let mut headline = Vec::new();
    for workload in &workloads {
        let mut samples: [Vec<Sample>; 3] = Default::default();
        for _ in 0..repetitions {
            for (index, host) in hosts.iter().enumerate() {
                let run = host.run(guest_path(workload.guest), &workload.args, Needs::Loopback);
                match (&run.exit, parse_guest(workload, &run.stdout)) {
                    (Exit::Code(0), Some(sample)) => samples[index].push(sample),
                    _ => eprintln!(
                        "{} on {}: {:?} {}",
                        workload.name,
                        host.name(),
                        run.exit,
                        run.stderr
                    ),
                }
            }
            samples[2].push((workload.native)());
        }
        let cell = |samples: &[Sample]| -> (String, f64) {
            if samples.is_empty() {
                return ("failed".into(), f64::NAN);
            }
            let mut values: Vec<f64> = samples.iter().map(|s| s.value).collect();
            let mut extras: Vec<f64> = samples.iter().map(|s| s.extra).collect();
            let (min, max) = values
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            let value = median(&mut values);
            let extra = median(&mut extras);
            let text = if workload.latency {
                format!("median {value:.1} µs, p99 {extra:.1} µs (median {min:.1}–{max:.1})")
            } else {
                format!("{value:.0} dgram/s, lost {extra:.0} ({min:.0}–{max:.0})")
            };
            (text, value)
        };
        let (ours, ours_value) = cell(&samples[0]);
        let (theirs, theirs_value) = cell(&samples[1]);
        let (native, native_value) = cell(&samples[2]);
        // Ratios read "how many times better ours is": throughput ratio, or
        // the inverse for latency.
        let ratio = |other: f64| {
            if workload.latency {
                other / ours_value
            } else {
                ours_value / other
            }
        };
        let (vs_theirs, vs_native) = (ratio(theirs_value), ratio(native_value));
        println!(
            "| {} | {ours} | {theirs} | {native} | {vs_theirs:.2} | {vs_native:.2} |",
            workload.name
        );
        let key = workload.name.replace(' ', "");
        headline.push(format!(
            "{key} ours/wasmtime-wasi={vs_theirs:.2} ours/native={vs_native:.2}"
        ));
    }
    println!();
    println!(
        "{} repetition(s); latency ratios are inverted so that above 1 means ours is faster",
        repetitions
    );
    println!("{}", headline.join("  "));
}
