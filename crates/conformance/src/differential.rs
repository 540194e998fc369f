//! Differential runs: the seeded `diff_random_ops` guest on this provider
//! and on wasmtime-wasi, compared line by line, and the first difference
//! classified.

use crate::hosts::{Against, Exit, Run};
use crate::suite::Needs;

/// The guest that performs the random sequences.
pub const GUEST: &str = "diff_random_ops";

/// What a difference between the two hosts means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// (a) The WIT allows both answers.
    Allowed(&'static str),
    /// (b) wasmtime-wasi contradicts the WIT.
    WasmtimeBug(&'static str),
    /// (c) This provider contradicts the WIT.
    OurBug(&'static str),
    /// No rule explains it: look at it.
    Unexplained,
}

/// The first step where two runs of one seed differ.
#[derive(Clone, Debug)]
pub struct Difference {
    /// The seed.
    pub seed: u64,
    /// Our line at that step (or how our run ended).
    pub ours: String,
    /// wasmtime-wasi's line at that step.
    pub theirs: String,
    /// What it means.
    pub class: Class,
}

/// The lines a run printed, ending with how it ended if not normally.
fn transcript(run: &Run) -> Vec<String> {
    let mut lines: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
    match &run.exit {
        Exit::Code(0) => {}
        Exit::Code(code) => lines.push(format!("exit {code}")),
        Exit::Trap(reason) => lines.push(format!("trap: {reason}")),
        Exit::Timeout => lines.push("timed out".into()),
        Exit::HostError(error) => lines.push(format!("host error: {error}")),
    }
    lines
}

/// Runs `seed` on both hosts and returns the first difference, if any.
pub fn compare(ours: &Against, theirs: &Against, seed: u64, steps: usize) -> Option<Difference> {
    let path = guest_artifacts::ALL
        .iter()
        .find(|(name, _)| *name == GUEST)
        .map(|(_, path)| *path)?;
    let args = [seed.to_string(), steps.to_string()];
    let ours_lines = transcript(&ours.run(path, &args, Needs::Loopback));
    let theirs_lines = transcript(&theirs.run(path, &args, Needs::Loopback));
    let at = (0..ours_lines.len().max(theirs_lines.len()))
        .find(|&i| ours_lines.get(i) != theirs_lines.get(i))?;
    let ours_line = ours_lines
        .get(at)
        .cloned()
        .unwrap_or_else(|| "(nothing)".into());
    let theirs_line = theirs_lines
        .get(at)
        .cloned()
        .unwrap_or_else(|| "(nothing)".into());
    let class = classify(&ours_line, &theirs_line);
    Some(Difference {
        seed,
        ours: ours_line,
        theirs: theirs_line,
        class,
    })
}

/// The result part of a transcript line (`... -> RESULT`).
fn result(line: &str) -> &str {
    line.rsplit_once(" -> ").map_or(line, |(_, result)| result)
}

/// Explains a difference between the same step on both hosts.
pub fn classify(ours: &str, theirs: &str) -> Class {
    let op = ours.split_whitespace().nth(1).unwrap_or("");
    let between_binds = ours.contains("[bind-started");
    if between_binds
        && (op == "local-address" || op == "stream")
        && result(ours) == "err(invalid-state)"
    {
        return Class::Allowed(
            "between start-bind and finish-bind the bind is not finished: \"WASI is stricter and requires \
             local-address to return invalid-state when the socket hasn't been bound yet\"; stream: \
             \"invalid-state: The socket is not bound\"",
        );
    }
    if op == "stream" && theirs.starts_with("trap:") && theirs.contains("exclusive access") {
        return Class::WasmtimeBug("re-streaming after the old streams were dropped traps");
    }
    if theirs.starts_with("trap:") && ours.starts_with('#') && ours.contains("stream") {
        return Class::WasmtimeBug("traps in stream after the streams were dropped");
    }
    if op == "local-address"
        && ours.contains("connected-once")
        && result(ours).ends_with(":P)")
        && result(theirs).ends_with(":0)")
    {
        return Class::WasmtimeBug("the bound port is lost by stream(none) after stream(some)");
    }
    if op == "receive" {
        let count = |line: &str| {
            let inner = result(line).trim_start_matches("ok(").trim_end_matches(')');
            if inner.is_empty() {
                0
            } else {
                inner.split(',').count()
            }
        };
        if result(theirs).starts_with("ok(") && count(ours) > count(theirs) {
            return Class::WasmtimeBug(
                "datagrams this provider delivers are lost (re-stream or lost port)",
            );
        }
    }
    Class::Unexplained
}

impl Class {
    /// The label used in reports.
    pub fn label(&self) -> String {
        match self {
            Class::Allowed(why) => format!("(a) allowed by the WIT: {why}"),
            Class::WasmtimeBug(why) => format!("(b) wasmtime-wasi bug: {why}"),
            Class::OurBug(why) => format!("(c) our bug: {why}"),
            Class::Unexplained => "unexplained".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_differences_are_classified() {
        assert!(matches!(
            classify(
                "#3 local-address s0[bind-started] -> err(invalid-state)",
                "#3 local-address s0[bind-started] -> ok(127.0.0.1:P)"
            ),
            Class::Allowed(_)
        ));
        assert!(matches!(
            classify(
                "#9 local-address s1[bound,streamed,connected-once] -> ok(0.0.0.0:P)",
                "#9 local-address s1[bound,streamed,connected-once] -> ok(0.0.0.0:0)"
            ),
            Class::WasmtimeBug(_)
        ));
        assert!(matches!(
            classify(
                "#7 stream s0[bound,streamed] none -> ok(i1 o1)",
                "trap: `connect` needs exclusive access"
            ),
            Class::WasmtimeBug(_)
        ));
        assert!(matches!(
            classify(
                "#5 receive i0 max 4 -> ok(3,5)",
                "#5 receive i0 max 4 -> ok(3)"
            ),
            Class::WasmtimeBug(_)
        ));
        assert_eq!(
            classify("#1 create Ipv4 -> ok(s0)", "#1 create Ipv4 -> err(unknown)"),
            Class::Unexplained
        );
    }
}
