//! The command line, parsed by clap: the same names `wasmtime run` uses
//! where there is one (`--dir`, `--env`), and this provider's policy,
//! limits and name lookup.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use wasi_udp_host::Rule;

/// Runs a wasi:cli/command component with wasi:sockets/udp@0.2.1 from
/// wasi-udp-host (every other WASI 0.2 interface from wasmtime-wasi).
/// Stdio is inherited, ARGS go to the guest, the exit code is the guest's.
#[derive(Debug, Parser)]
#[command(
    name = "wasi-udp",
    version,
    override_usage = "wasi-udp [OPTIONS] <COMPONENT.wasm> [ARGS]...\n       wasi-udp [OPTIONS] --explain-policy",
    after_help = AFTER_HELP,
    // Everything after the component belongs to the guest.
    trailing_var_arg = true,
)]
pub struct Args {
    /// The allow rules.
    #[arg(
        long = "allow",
        value_name = "RULE",
        value_parser = parse_rule,
        help_heading = "UDP policy",
        help = "Grant what RULE covers: [USES:]NET[:PORT[-PORT]], USES a comma list of bind, \
                connect, send, receive (default: all four), and of join (multicast groups), \
                broadcast and share (shared ports), which only rules that name them grant; \
                e.g. send,connect:10.0.0.0/8:53, bind:0.0.0.0:5353, \
                'receive:[fd00::/8]:5000-5100', join:224.0.0.251 (repeatable)"
    )]
    pub allow: Vec<Rule>,

    /// Refuse what RULE covers, whatever grants it (repeatable)
    #[arg(long = "deny", value_name = "RULE", value_parser = parse_rule, help_heading = "UDP policy")]
    pub deny: Vec<Rule>,

    /// Base: nothing, not even loopback
    #[arg(long, conflicts_with = "inherit_network", help_heading = "UDP policy")]
    pub deny_all: bool,

    /// Base: everything the operating system allows (but binding ports
    /// below 1024)
    #[arg(long, help_heading = "UDP policy")]
    pub inherit_network: bool,

    /// The policy file.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "UDP policy",
        help = "Read base, rules and limits from a TOML file (base = \"none\", allow = [RULE...], \
                deny = [RULE...], [limits] with the limits' flag names); flags add to it"
    )]
    pub policy: Option<PathBuf>,

    /// Print the effective rules, limits and budgets, then exit
    #[arg(long, help_heading = "UDP policy")]
    pub explain_policy: bool,

    /// Live sockets; then create-udp-socket is new-socket-limit
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Limits per run")]
    pub max_sockets: Option<u64>,

    /// Datagrams one check-send may permit
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Limits per run")]
    pub max_send_batch: Option<u64>,

    /// Datagrams one receive may return
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Limits per run")]
    pub max_receive_batch: Option<u64>,

    /// Larger sends are datagram-too-large; larger received datagrams are
    /// dropped (and counted)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Limits per run")]
    pub max_datagram_size: Option<u64>,

    /// Cap on the buffer size a guest may set on a socket
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Limits per run")]
    pub max_socket_buffer: Option<u64>,

    /// Kernel buffer memory of all the guest's sockets, as the kernel
    /// accounts it
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Limits per run")]
    pub max_store_buffers: Option<u64>,

    /// Datagrams per second (check-send returns 0 meanwhile)
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Limits per run")]
    pub send_rate: Option<u64>,

    /// Bytes per second, each datagram's headers included
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Limits per run")]
    pub send_bytes_rate: Option<u64>,

    /// Peers per socket whose replies are admitted (oldest forgotten)
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Limits per run")]
    pub max_reply_peers: Option<u64>,

    /// Resolve names through the system's resolver (DNS) too; without it
    /// only IP addresses, localhost and the hosts file's names resolve
    #[arg(long, help_heading = "Names")]
    pub allow_name_lookup: bool,

    /// Read names from FILE instead of /etc/hosts
    #[arg(long, value_name = "FILE", help_heading = "Names")]
    pub hosts_file: Option<PathBuf>,

    /// Whose UDP the guest gets.
    #[arg(
        long,
        value_name = "PROVIDER",
        default_value = "wasi-udp",
        value_parser = ["wasi-udp", "wasmtime-wasi"],
        help_heading = "Network",
        help = "Whose UDP the guest gets: wasi-udp (this provider, the default) or wasmtime-wasi \
                (its builtin UDP, to compare a program on both; the rules apply through its \
                address check, but not the limits, warnings, extensions, --network sim, --pcap \
                or --stats)"
    )]
    pub udp: String,

    /// Run on the operating system's network (kernel, the default) or on a
    /// simulated one in memory (sim), with virtual time
    #[arg(long, value_name = "NETWORK", default_value = "kernel", value_parser = ["kernel", "sim"], help_heading = "Network")]
    pub network: String,

    /// The seed of the simulated network's faults
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Network")]
    pub seed: u64,

    /// Simulated: the chance that a datagram is lost (0 to 1)
    #[arg(long, value_name = "P", value_parser = parse_chance, help_heading = "Network")]
    pub loss: Option<f64>,

    /// Simulated: the chance that a datagram arrives twice
    #[arg(long, value_name = "P", value_parser = parse_chance, help_heading = "Network")]
    pub duplicate: Option<f64>,

    /// Simulated: the chance that a datagram is held back behind later ones
    #[arg(long, value_name = "P", value_parser = parse_chance, help_heading = "Network")]
    pub reorder: Option<f64>,

    /// Simulated: each datagram's delay in milliseconds, or a range drawn
    /// from evenly (e.g. 5..50)
    #[arg(long, value_name = "MS[..MS]", value_parser = parse_delay, help_heading = "Network")]
    pub delay: Option<(Duration, Duration)>,

    /// Simulated: the largest packet (payload and headers); larger ones are
    /// dropped
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Network")]
    pub mtu: Option<u64>,

    /// Simulated: most datagrams per second on each link
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Network")]
    pub rate: Option<u64>,

    /// Simulated: a host-side echo server at ADDR:PORT (repeatable)
    #[arg(long = "sim-echo", value_name = "ADDR:PORT", help_heading = "Network")]
    pub sim_echo: Vec<std::net::SocketAddr>,

    /// Write every datagram the guest sends and receives to FILE (pcap, raw
    /// IP; open it with tshark or Wireshark)
    #[arg(long, value_name = "FILE", help_heading = "Network")]
    pub pcap: Option<PathBuf>,

    /// Print a table of every socket's counters on stderr when the guest
    /// exits
    #[arg(long, help_heading = "Network")]
    pub stats: bool,

    /// Give the guest the host directory HOST, as GUEST (default: HOST)
    /// (repeatable)
    #[arg(long = "dir", value_name = "HOST[::GUEST]", value_parser = parse_dir, help_heading = "Guest environment")]
    pub dirs: Vec<(PathBuf, String)>,

    /// Set NAME to VALUE for the guest, or pass NAME on from this process's
    /// environment (repeatable)
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env, help_heading = "Guest environment")]
    pub env: Vec<(String, Option<String>)>,

    /// Pass this process's whole environment to the guest
    #[arg(long, help_heading = "Guest environment")]
    pub inherit_env: bool,

    /// End the guest after DURATION of wall-clock time (e.g. 500ms, 10s,
    /// 2m); exit code 124
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Resources")]
    pub timeout: Option<Duration>,

    /// Refuse to grow the guest's memory past BYTES (e.g. 64MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Resources")]
    pub max_memory: Option<u64>,

    /// Compile the component every run instead of using the cache
    #[arg(long, help_heading = "Resources")]
    pub no_cache: bool,

    /// Where compiled components are cached (default:
    /// $XDG_CACHE_HOME/wasi-udp or ~/.cache/wasi-udp)
    #[arg(long, value_name = "DIR", help_heading = "Resources")]
    pub cache_dir: Option<PathBuf>,

    /// Log more (-vv: debug); refusals, dropped datagrams and limits are
    /// always logged; RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// The component to run, then the guest's arguments (all of them, the
    /// guest's own flags included)
    #[arg(
        value_name = "COMPONENT.wasm [ARGS]",
        required_unless_present = "explain_policy",
        num_args = 1..
    )]
    pub command: Vec<OsString>,
}

impl Args {
    /// The component to run.
    pub fn component(&self) -> Option<PathBuf> {
        self.command.first().map(PathBuf::from)
    }

    /// The guest's arguments.
    pub fn guest_args(&self) -> &[OsString] {
        self.command.get(1..).unwrap_or_default()
    }
}

const AFTER_HELP: &str = "\
The UDP policy starts from a base: loopback (the default: connect, send and receive on
127.0.0.0/8 and ::1; bind there on port 0 or 1024-65535, and on 0.0.0.0 and :: on port 0
only), nothing (--deny-all) or everything (--inherit-network). No base grants binding a
port below 1024. A matching --deny rule refuses whatever allows it; otherwise a matching
--allow rule (or the base) grants; otherwise refused. Every datagram sent needs a send
rule, connected or not (so connecting needs connect and send); replies from where a
socket sent are admitted without a receive rule; receive rules admit unsolicited
datagrams.

BYTES may end in KiB, MiB or GiB. As a cargo runner:
  CARGO_TARGET_WASM32_WASIP2_RUNNER=wasi-udp cargo test --target wasm32-wasip2

Exit codes: the guest's own (0 or 1); 2 for input that cannot run; 124 when --timeout
ends the guest; 130 or 143 after SIGINT or SIGTERM; 134 when the guest traps.";

fn parse_rule(text: &str) -> Result<Rule, String> {
    text.parse()
        .map_err(|e: wasi_udp_host::ParseRuleError| e.to_string())
}

fn positive(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number".into()),
    }
}

/// `65536`, `64KiB`, `4MiB`, `1GiB` (K, M and G alone mean the same).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number of bytes, e.g. 65536 or 64KiB"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("`{other}`: the units are KiB, MiB and GiB")),
    };
    let bytes = number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes == 0 {
        return Err("must be at least 1".into());
    }
    Ok(bytes)
}

/// `500ms`, `10s`, `2m`, `1h`, or seconds alone.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration, e.g. 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("`{other}`: the units are ms, s, m and h")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("must be longer than 0".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A probability, from 0 to 1.
fn parse_chance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}`: expected a chance from 0 to 1, e.g. 0.2")),
    }
}

/// `MS` or `MS..MS`, in milliseconds.
fn parse_delay(text: &str) -> Result<(Duration, Duration), String> {
    let millis = |part: &str| {
        part.trim()
            .parse::<f64>()
            .ok()
            .filter(|ms| *ms >= 0.0 && ms.is_finite())
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .ok_or_else(|| format!("`{text}`: expected milliseconds, e.g. 20 or 5..50"))
    };
    match text.split_once("..") {
        Some((low, high)) => {
            let (low, high) = (millis(low)?, millis(high)?);
            if low > high {
                return Err(format!("`{text}`: the range is empty"));
            }
            Ok((low, high))
        }
        None => {
            let delay = millis(text)?;
            Ok((delay, delay))
        }
    }
}

/// `HOST[::GUEST]`, as `wasmtime run --dir` takes it.
fn parse_dir(text: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = match text.split_once("::") {
        Some((host, guest)) => (host, guest),
        None => (text, text),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!("`{text}`: expected HOST or HOST::GUEST"));
    }
    Ok((PathBuf::from(host), guest.to_owned()))
}

/// `NAME=VALUE`, or `NAME` to pass on this process's value.
fn parse_env(text: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(format!("`{text}`: expected NAME or NAME=VALUE"));
    }
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("wasi-udp").chain(args.iter().copied()))
    }

    #[test]
    fn guest_arguments_follow_the_component() {
        let args =
            parse(&["-v", "--env", "A=1", "g.wasm", "-v", "--nocapture", "x"]).expect("parses");
        assert_eq!(args.component(), Some(PathBuf::from("g.wasm")));
        assert_eq!(args.guest_args(), ["-v", "--nocapture", "x"]);
        assert_eq!(args.env, [("A".to_owned(), Some("1".to_owned()))]);
        assert_eq!(args.verbose, 1);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &["--allow"],
            &["--allow", "10.0.0.0/8:x", "g.wasm"],
            &["--env", "=1", "g.wasm"],
            &["--bogus", "g.wasm"],
            &["--deny-all", "--inherit-network", "g.wasm"],
            &["--max-sockets", "0", "g.wasm"],
            &["--max-sockets", "many", "g.wasm"],
            &["--timeout", "soon", "g.wasm"],
            &["--max-memory", "12 parsecs", "g.wasm"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn misspelled_flags_get_a_suggestion() {
        let error = parse(&["--alow", "127.0.0.1", "g.wasm"]).expect_err("unknown");
        let text = error.to_string();
        assert!(text.contains("--allow"), "{text}");
    }

    #[test]
    fn sizes_durations_dirs_and_env() {
        assert_eq!(parse_bytes("65536"), Ok(65_536));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("4MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("5 pounds").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(
            parse_dir("/tmp/data::/data"),
            Ok((PathBuf::from("/tmp/data"), "/data".to_owned()))
        );
        assert_eq!(parse_dir("."), Ok((PathBuf::from("."), ".".to_owned())));
        assert_eq!(parse_env("HOME"), Ok(("HOME".to_owned(), None)));
        assert_eq!(
            parse_delay("5..50"),
            Ok((Duration::from_millis(5), Duration::from_millis(50)))
        );
        assert_eq!(
            parse_delay("20"),
            Ok((Duration::from_millis(20), Duration::from_millis(20)))
        );
        assert!(parse_delay("50..5").is_err());
        assert_eq!(parse_chance("0.2"), Ok(0.2));
        assert!(parse_chance("1.5").is_err());
    }
}
