//! The `wasi:sockets/udp` conformance suite as a library: the guests and
//! their expectations ([`suite`]), the hosts they run on ([`hosts`]), and the
//! reports ([`report`]). The `wasi-udp-conformance` binary is a thin front.

#![forbid(unsafe_code)]

pub mod differential;
pub mod hosts;
pub mod report;
pub mod suite;

use std::time::Instant;

use hosts::Against;
use report::{Outcome, Verdict};
use suite::Case;

/// Runs each of `cases` against `against`, calling `each` as every outcome
/// is known. `shaped_loopback` says loopback here queues datagrams.
pub fn run_suite(
    against: &Against,
    cases: Vec<Case>,
    shaped_loopback: bool,
    mut each: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for case in cases {
        let path = guest_artifacts::ALL
            .iter()
            .find(|(name, _)| *name == case.name)
            .map(|(_, path)| *path)
            .unwrap_or_default();
        let start = Instant::now();
        let (verdict, output) = match against.provides(case.needs, shaped_loopback) {
            Err(why) => (Verdict::Skipped(why), String::new()),
            Ok(()) => {
                let run = against.run(path, &[], case.needs);
                let output = format!(
                    "--- stdout ---\n{}\n--- stderr ---\n{}",
                    run.stdout, run.stderr
                );
                (report::judge(&case, &run), output)
            }
        };
        let outcome = Outcome {
            case,
            verdict,
            elapsed: start.elapsed(),
            output,
        };
        each(&outcome);
        outcomes.push(outcome);
    }
    outcomes
}
