//! Verdicts and the three report formats: a line per guest, a markdown
//! table, JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use crate::hosts::{Exit, Run};
use crate::suite::{Case, Expect};

/// The verdict on one guest.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// The run matched the expectation.
    Passed,
    /// It did not; the reason.
    Failed(String),
    /// Not run: the host lacks what the guest needs.
    Skipped(String),
}

/// One guest's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The guest.
    pub case: Case,
    /// The verdict.
    pub verdict: Verdict,
    /// How long the run took.
    pub elapsed: Duration,
    /// What the guest printed, for failures.
    pub output: String,
}

/// Judges `run` against `case`'s expectation.
pub fn judge(case: &Case, run: &Run) -> Verdict {
    let trapped_after =
        |marker: &str| matches!(run.exit, Exit::Trap(_)) && run.stdout.contains(marker);
    let ok = match case.expect {
        Expect::Pass => run.exit == Exit::Code(0),
        Expect::Trap { marker } => trapped_after(marker),
        Expect::PassOrTrap { marker, .. } => run.exit == Exit::Code(0) || trapped_after(marker),
    };
    if ok {
        return Verdict::Passed;
    }
    let got = match &run.exit {
        Exit::Code(code) => format!("exit {code}"),
        Exit::Trap(reason) => format!("trap: {reason}"),
        Exit::Timeout => "timed out".into(),
        Exit::HostError(error) => format!("host error: {error}"),
    };
    let hint = run
        .stderr
        .lines()
        .chain(run.stdout.lines())
        .find(|line| {
            line.contains("panicked at") || line.contains("expected") || line.contains("assertion")
        })
        .map(|line| format!(" ({})", line.trim()))
        .unwrap_or_default();
    let detail = run
        .stderr
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .nth(1)
        .map(|line| format!(": {}", line.trim()))
        .unwrap_or_default();
    Verdict::Failed(format!(
        "expected {}, got {got}{hint}{detail}",
        case.expect.describe()
    ))
}

/// Counts of each verdict.
pub fn totals(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let count = |f: fn(&Verdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
    (
        count(|v| matches!(v, Verdict::Passed)),
        count(|v| matches!(v, Verdict::Failed(_))),
        count(|v| matches!(v, Verdict::Skipped(_))),
    )
}

/// The line printed for one guest.
pub fn line(outcome: &Outcome) -> String {
    let name = outcome.case.name;
    let ms = outcome.elapsed.as_millis();
    match &outcome.verdict {
        Verdict::Passed => format!("ok    {name} ({ms} ms)"),
        Verdict::Failed(why) => format!("FAIL  {name} ({ms} ms): {why}"),
        Verdict::Skipped(why) => format!("skip  {name}: {why}"),
    }
}

/// The closing line every report ends with.
pub fn closing_line(outcomes: &[Outcome]) -> String {
    let (passed, failed, skipped) = totals(outcomes);
    format!("{passed} passed, {failed} failed, {skipped} skipped")
}

/// A markdown table of the outcomes against `host`.
pub fn markdown(host: &str, outcomes: &[Outcome]) -> String {
    let mut text = format!("Results against `{host}`: {}\n\n", closing_line(outcomes));
    text.push_str("| guest | expects | result |\n|---|---|---|\n");
    for outcome in outcomes {
        let result = match &outcome.verdict {
            Verdict::Passed => "pass".to_owned(),
            Verdict::Failed(why) => format!("**fail**: {}", why.replace('|', "\\|")),
            Verdict::Skipped(why) => format!("skip: {why}"),
        };
        let _ = writeln!(
            text,
            "| `{}` | {} | {} |",
            outcome.case.name,
            outcome.case.expect.describe().replace('|', "\\|"),
            result
        );
    }
    text
}

/// JUnit XML of the outcomes against `host`.
pub fn junit(host: &str, outcomes: &[Outcome]) -> String {
    let (_, failed, skipped) = totals(outcomes);
    let seconds: f64 = outcomes.iter().map(|o| o.elapsed.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites><testsuite name=\"wasi-udp-conformance\" hostname=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{seconds:.3}\">",
        escape(host),
        outcomes.len()
    );
    for outcome in outcomes {
        let _ = write!(
            xml,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(host),
            outcome.case.name,
            outcome.elapsed.as_secs_f64()
        );
        match &outcome.verdict {
            Verdict::Passed => xml.push_str("/>\n"),
            Verdict::Failed(why) => {
                let _ = writeln!(
                    xml,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    escape(why),
                    escape(&outcome.output)
                );
            }
            Verdict::Skipped(why) => {
                let _ = writeln!(xml, "><skipped message=\"{}\"/></testcase>", escape(why));
            }
        }
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

fn escape(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Needs;

    fn case(expect: Expect) -> Case {
        Case {
            name: "udp_x",
            expect,
            needs: Needs::Loopback,
        }
    }

    fn run(exit: Exit, stdout: &str) -> Run {
        Run {
            exit,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn verdicts_follow_the_expectation() {
        let trap = Exit::Trap("boom".into());
        assert!(matches!(
            judge(&case(Expect::Pass), &run(Exit::Code(0), "")),
            Verdict::Passed
        ));
        assert!(matches!(
            judge(&case(Expect::Pass), &run(Exit::Code(1), "")),
            Verdict::Failed(_)
        ));
        let must_trap = case(Expect::Trap { marker: "about to" });
        assert!(matches!(
            judge(&must_trap, &run(trap.clone(), "about to send")),
            Verdict::Passed
        ));
        assert!(
            matches!(
                judge(&must_trap, &run(trap.clone(), "")),
                Verdict::Failed(_)
            ),
            "trapped too early"
        );
        assert!(matches!(
            judge(&must_trap, &run(Exit::Code(1), "about to send")),
            Verdict::Failed(_)
        ));
        let either = case(Expect::PassOrTrap {
            marker: "about to",
            wit: "",
        });
        assert!(matches!(
            judge(&either, &run(Exit::Code(0), "")),
            Verdict::Passed
        ));
        assert!(matches!(
            judge(&either, &run(trap, "about to drop")),
            Verdict::Passed
        ));
        assert!(matches!(
            judge(&either, &run(Exit::Timeout, "")),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn junit_escapes_and_counts() {
        let outcomes = vec![Outcome {
            case: case(Expect::Pass),
            verdict: Verdict::Failed("expected <exit 0> & \"more\"".into()),
            elapsed: Duration::from_millis(5),
            output: "x\u{1b}y".into(),
        }];
        let xml = junit("ours", &outcomes);
        assert!(xml.contains("failures=\"1\""));
        assert!(xml.contains("expected &lt;exit 0&gt; &amp; &quot;more&quot;"));
        assert!(!xml.contains('\u{1b}'));
        assert_eq!(closing_line(&outcomes), "0 passed, 1 failed, 0 skipped");
    }
}
