//! `wasi-udp-conformance`: runs every `wasi:sockets/udp` conformance guest
//! against a host and reports per guest, as markdown and as JUnit XML.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use wasi_udp_conformance::hosts::Against;
use wasi_udp_conformance::{report, run_suite, suite};

const USAGE: &str = "\
Usage: wasi-udp-conformance --against HOST [--markdown FILE] [--junit FILE] [--filter TEXT]
                             [--shaped-loopback] [--list]
       wasi-udp-conformance --differential SEEDS [--first-seed N] [--steps N]

HOST is one of:
  ours              this repository's provider, in-process
  wasmtime-wasi     wasmtime-wasi 48's builtin UDP, in-process, stock linker
  'CMD {wasm}'      any command; {wasm} is replaced by the guest's path, e.g.
                    'wasmtime run -S inherit-network {wasm}'
                    (exit 0 = passed, 1 = the guest failed, anything else = trap)

--shaped-loopback says this process runs where loopback queues datagrams, so
udp_check_send_backpressure can run, e.g. as root:
  unshare -n sh -c 'ip link set lo up && tc qdisc add dev lo root tbf rate 1mbit \
    burst 1600 latency 200ms && wasi-udp-conformance --against ours --shaped-loopback'

Every host gets loopback; in-process hosts also allow binding to TEST-NET-1
(192.0.2.0/24, nothing is sent there) and refuse everything else.
Prints a line per guest and closes with `N passed, M failed, K skipped`;
exits 1 if any guest failed.

--differential runs the seeded random-operation guest on ours and on
wasmtime-wasi for SEEDS seeds, prints the first differing step of each seed
with its class ((a) allowed by the WIT, (b) wasmtime-wasi bug, (c) our bug,
or unexplained), and exits 1 if any difference is unexplained or ours.";

struct Options {
    differential: Option<u64>,
    first_seed: u64,
    steps: usize,
    against: String,
    markdown: Option<String>,
    junit: Option<String>,
    filter: Option<String>,
    list: bool,
    shaped_loopback: bool,
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        differential: None,
        first_seed: 1,
        steps: 40,
        against: String::new(),
        markdown: None,
        junit: None,
        filter: None,
        list: false,
        shaped_loopback: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--against" => options.against = value()?,
            "--markdown" => options.markdown = Some(value()?),
            "--junit" => options.junit = Some(value()?),
            "--filter" => options.filter = Some(value()?),
            "--list" => options.list = true,
            "--shaped-loopback" => options.shaped_loopback = true,
            "--differential" => {
                options.differential = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--differential takes a number")?,
                );
            }
            "--first-seed" => {
                options.first_seed = value()?
                    .parse()
                    .map_err(|_| "--first-seed takes a number")?
            }
            "--steps" => options.steps = value()?.parse().map_err(|_| "--steps takes a number")?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    if options.against.is_empty() && !options.list && options.differential.is_none() {
        return Err(format!("--against is required\n\n{USAGE}"));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if let Some(seeds) = options.differential {
        return differential(options.first_seed, seeds, options.steps);
    }
    let cases: Vec<_> = suite::cases()
        .into_iter()
        .filter(|case| {
            options
                .filter
                .as_deref()
                .is_none_or(|text| case.name.contains(text))
        })
        .collect();
    if options.list {
        for case in &cases {
            println!(
                "{}  expects {}  needs {:?}",
                case.name,
                case.expect.describe(),
                case.needs
            );
        }
        return ExitCode::SUCCESS;
    }
    let against = match Against::parse(&options.against) {
        Ok(against) => against,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let host = against.name();
    println!("running {} guests against {host}", cases.len());
    let outcomes = run_suite(&against, cases, options.shaped_loopback, |outcome| {
        println!("{}", report::line(outcome))
    });
    let mut written = true;
    if let Some(path) = &options.markdown {
        written &= write(path, &report::markdown(&host, &outcomes));
    }
    if let Some(path) = &options.junit {
        written &= write(path, &report::junit(&host, &outcomes));
    }
    println!("{}", report::closing_line(&outcomes));
    let (_, failed, _) = report::totals(&outcomes);
    if failed == 0 && written {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn write(path: &str, text: &str) -> bool {
    match std::fs::write(path, text) {
        Ok(()) => true,
        Err(error) => {
            eprintln!("cannot write {path}: {error}");
            false
        }
    }
}

fn differential(first_seed: u64, seeds: u64, steps: usize) -> ExitCode {
    use wasi_udp_conformance::differential::{Class, compare};
    let (ours, theirs) = match (Against::parse("ours"), Against::parse("wasmtime-wasi")) {
        (Ok(ours), Ok(theirs)) => (ours, theirs),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (mut same, mut allowed, mut theirs_bugs, mut ours_bugs, mut unexplained) = (0, 0, 0, 0, 0);
    for seed in first_seed..first_seed + seeds {
        match compare(&ours, &theirs, seed, steps) {
            None => same += 1,
            Some(difference) => {
                match difference.class {
                    Class::Allowed(_) => allowed += 1,
                    Class::WasmtimeBug(_) => theirs_bugs += 1,
                    Class::OurBug(_) => ours_bugs += 1,
                    Class::Unexplained => unexplained += 1,
                }
                println!(
                    "seed {seed}: {}\n    ours:          {}\n    wasmtime-wasi: {}",
                    difference.class.label(),
                    difference.ours,
                    difference.theirs
                );
            }
        }
    }
    println!(
        "differential: {seeds} seeds of {steps} steps: {same} identical, {allowed} allowed by the WIT, \
         {theirs_bugs} wasmtime-wasi bugs, {ours_bugs} our bugs, {unexplained} unexplained"
    );
    if unexplained == 0 && ours_bugs == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
