//! `wasi-udp-conformance`: runs every `wasi:sockets/udp` conformance guest
//! against a host and reports per guest, as markdown and as JUnit XML.

use std::process::ExitCode;

use wasi_udp_conformance::hosts::Against;
use wasi_udp_conformance::{report, run_suite, suite};

const USAGE: &str = "\
Usage: wasi-udp-conformance --against HOST [--markdown FILE] [--junit FILE] [--filter TEXT] [--list]

HOST is one of:
  ours              this repository's provider, in-process
  wasmtime-wasi     wasmtime-wasi 48's builtin UDP, in-process, stock linker
  'CMD {wasm}'      any command; {wasm} is replaced by the guest's path, e.g.
                    'wasmtime run -S inherit-network {wasm}'
                    (exit 0 = passed, 1 = the guest failed, anything else = trap)

Every host gets loopback; in-process hosts also allow binding to TEST-NET-1
(192.0.2.0/24, nothing is sent there) and refuse everything else.
Prints a line per guest and closes with `N passed, M failed, K skipped`;
exits 1 if any guest failed.";

struct Options {
    against: String,
    markdown: Option<String>,
    junit: Option<String>,
    filter: Option<String>,
    list: bool,
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        against: String::new(),
        markdown: None,
        junit: None,
        filter: None,
        list: false,
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
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    if options.against.is_empty() && !options.list {
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
    let outcomes = run_suite(&against, cases, |outcome| {
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
