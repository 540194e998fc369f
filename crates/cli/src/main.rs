//! `wasi-udp`: runs a `wasi:cli/command` component with wasmtime-wasi and the
//! `wasi-udp-host` UDP provider.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod settings;

use settings::{Base, LIMIT_NAMES, Layer, Settings, read_policy_file};
use wasi_udp_host::Rule;
use wasi_udp_host::WasiUdpState;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiCtx};

/// Exit code for bad command-line input or a guest that cannot run.
const EXIT_USAGE: u8 = 2;
/// Exit code for a guest that trapped (as `wasmtime run` does on Unix).
const EXIT_TRAP: u8 = 134;

const USAGE: &str = "\
Usage: wasi-udp [OPTIONS] <COMPONENT.wasm> [ARGS...]
       wasi-udp [POLICY OPTIONS] --explain-policy

Runs a wasi:cli/command component with wasi:sockets/udp@0.2.1 from wasi-udp-host
(every other WASI 0.2 interface from wasmtime-wasi). Stdio is inherited; ARGS are
passed to the guest; the exit code is the guest's.

UDP policy. The rules start from a base: loopback (the default: connect, send and
receive on 127.0.0.0/8 and ::1; bind there on port 0 or 1024-65535, and on 0.0.0.0
and :: on port 0 only), nothing (--deny-all) or everything (--inherit-network: all
of that anywhere). No base grants binding a port below 1024. A matching --deny rule
refuses whatever allows it; otherwise a matching --allow rule (or the base) grants;
otherwise refused. Every datagram sent needs a send rule, connected or not (so
connecting needs connect and send); replies from where a socket sent are admitted
without a receive rule; receive rules admit unsolicited datagrams.
  --allow RULE                grant what RULE covers (repeatable)
  --deny RULE                 refuse what RULE covers (repeatable)
                              RULE is [USES:]CIDR[:PORT[-PORT]], USES a comma list of
                              bind, connect, send, receive (default: all), e.g.
                              send,connect:10.0.0.0/8:53  bind:0.0.0.0:5353
                              'receive:[fd00::/8]:5000-5100'
  --deny-all                  base: nothing, not even loopback
  --inherit-network           base: everything the operating system allows
  --policy FILE               read base, rules and limits from a TOML file
                              (base = \"none\", allow = [RULE...], deny = [RULE...],
                              [limits] with the names below); flags add to it
  --explain-policy            print the effective rules and limits, then exit

Limits per run (defaults in --explain-policy):
  --max-sockets N             live sockets; then create-udp-socket is new-socket-limit
  --max-send-batch N          datagrams one check-send may permit
  --max-receive-batch N       datagrams one receive may return
  --max-datagram-size BYTES   larger sends are datagram-too-large; larger received
                              datagrams are dropped (and counted)
  --max-socket-buffer BYTES   cap on the buffer size a guest may set on a socket
  --max-store-buffers BYTES   cap on the buffer sizes set across all sockets
  --send-rate N               datagrams per second (check-send returns 0 meanwhile)
  --send-bytes-rate BYTES     payload bytes per second
  --max-reply-peers N         peers per socket whose replies are admitted (oldest forgotten)

Other options:
  --env K=V                   set an environment variable for the guest (repeatable)
  -v, --verbose               log more (-vv: debug); refusals, dropped datagrams and
                              limits are always logged; RUST_LOG overrides
  -h, --help                  print this help
  -V, --version               print the version

Exit codes: the guest's own; 2 for bad input; 134 when the guest traps.";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    component: PathBuf,
    guest_args: Vec<String>,
    env: Vec<(String, String)>,
    policy_file: Option<PathBuf>,
    flags: Layer,
    explain_policy: bool,
    verbosity: u8,
}

enum Parsed {
    Run(Box<Options>),
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    let text = |arg: OsString| {
        arg.into_string()
            .map_err(|arg| format!("argument {arg:?} is not valid UTF-8"))
    };
    let set_base = |options: &mut Options, base: Base, flag: &str| match options.flags.base {
        Some(other) if other != base => Err(format!(
            "{flag} cannot be combined with --deny-all or --inherit-network"
        )),
        _ => {
            options.flags.base = Some(base);
            Ok(())
        }
    };
    while let Some(arg) = args.next() {
        let arg = text(arg)?;
        let mut value = |name: &str| -> Result<String, String> {
            args.next()
                .map(text)
                .transpose()?
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-v" | "--verbose" => options.verbosity += 1,
            "-vv" => options.verbosity += 2,
            "--inherit-network" => set_base(&mut options, Base::Everything, &arg)?,
            "--deny-all" => set_base(&mut options, Base::Nothing, &arg)?,
            "--explain-policy" => options.explain_policy = true,
            "--policy" => options.policy_file = Some(PathBuf::from(value("--policy")?)),
            "--allow" | "--deny" => {
                let rule = value(&arg)?;
                let parsed: Rule = rule.parse().map_err(|e| format!("{arg} {rule}: {e}"))?;
                if arg == "--allow" {
                    options.flags.rules.allow(parsed);
                } else {
                    options.flags.rules.deny(parsed);
                }
            }
            "--env" => {
                let pair = value("--env")?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--env {pair}: expected K=V"))?;
                options.env.push((key.to_owned(), val.to_owned()));
            }
            flag if flag
                .strip_prefix("--")
                .is_some_and(|name| LIMIT_NAMES.contains(&name)) =>
            {
                let raw = value(flag)?;
                let number: u64 = raw
                    .parse()
                    .map_err(|_| format!("{flag} {raw}: expected a whole number"))?;
                options
                    .flags
                    .limits
                    .set(&flag[2..], number)
                    .map_err(|e| format!("{flag}: {e}"))?;
            }
            "--" => {
                let component = args.next().ok_or("missing the component to run")?;
                options.component = PathBuf::from(component);
                break;
            }
            option if option.starts_with('-') && option.len() > 1 => {
                return Err(format!("unknown option {option} (see --help)"));
            }
            _ => {
                options.component = PathBuf::from(arg);
                break;
            }
        }
    }
    if options.component.as_os_str().is_empty() && !options.explain_policy {
        return Err("missing the component to run (see --help)".into());
    }
    for arg in args {
        options.guest_args.push(text(arg)?);
    }
    Ok(Parsed::Run(Box::new(options)))
}

/// The settings `options` asks for, reading the policy file if there is one.
fn settings(options: &Options) -> Result<Settings, String> {
    let file = options
        .policy_file
        .as_deref()
        .map(read_policy_file)
        .transpose()?;
    Ok(Settings::merge(file, options.flags.clone()))
}

/// Why a run ended other than by the guest's own exit.
enum Failure {
    /// The input cannot run: one line, exit 2.
    Input(String),
    /// The guest trapped.
    Trap(wasmtime::Error),
}

/// Loads `path` as a component, or says in one line why it is not one.
fn load_component(engine: &Engine, path: &Path) -> Result<Component, Failure> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read {shown}: {e}")))?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Failure::Input(format!("{shown} is not a WebAssembly file")));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(Failure::Input(format!(
            "{shown} is a core WebAssembly module, not a component; build for wasm32-wasip2 \
             (or wrap the module with `wasm-tools component new`)"
        )));
    }
    let component = Component::new(engine, &bytes)
        .map_err(|e| Failure::Input(format!("{shown} is not a valid component: {e:#}")))?;
    let exports_run = component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:cli/run@0.2"));
    if !exports_run {
        return Err(Failure::Input(format!(
            "{shown} does not export wasi:cli/run@0.2.x, so it is not a command component"
        )));
    }
    Ok(component)
}

async fn run(options: Options, settings: Settings) -> Result<i32, Failure> {
    let engine = Engine::new(&Config::new()).map_err(Failure::Trap)?;
    let component = load_component(&engine, &options.component)?;

    let mut linker = Linker::<WasiUdpState>::new(&engine);
    wasi_udp_host::add_command_to_linker_async(&mut linker).map_err(Failure::Trap)?;

    let program = options
        .component
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdio().arg(&program).args(&options.guest_args);
    for (key, value) in &options.env {
        wasi.env(key, value);
    }
    let mut store = Store::new(&engine, WasiUdpState::new(wasi.build(), settings.udp_ctx()));
    // wasmtime copies a call's arguments before the provider can refuse
    // them: no call needs more than the largest legal send.
    store.set_hostcall_fuel(settings.limits.hostcall_fuel());
    let command = Command::instantiate_async(&mut store, &component, &linker)
        .await
        .map_err(|e| Failure::Input(format!("cannot instantiate {program}: {e:#}")))?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(Failure::Trap(error)),
        },
    }
}

/// Raises the soft limit on open descriptors to the hard one, so that the
/// guest's sockets get all the process may have (the provider's descriptor
/// budget is read from it, keeping a reserve for the CLI itself).
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // Failing leaves the soft limit, which the budget then reflects.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

fn init_logging(verbosity: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbosity {
        0 => "warn",
        1 => "warn,wasi_udp_host=info",
        _ => "info,wasi_udp_host=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Timestamps only help when following a run in detail.
    if verbosity >= 2 {
        subscriber.init();
    } else {
        subscriber.without_time().init();
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(options)) => *options,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("wasi-udp {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("wasi-udp: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    raise_descriptor_limit();
    let settings = match settings(&options) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("wasi-udp: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if options.explain_policy {
        println!("{}", settings.explain());
        return ExitCode::SUCCESS;
    }
    let verbosity = options.verbosity;
    init_logging(verbosity);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasi-udp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options, settings)) {
        // Exit codes outside 0..=255 are truncated the way POSIX does.
        Ok(code) => ExitCode::from(code as u8),
        Err(Failure::Input(message)) => {
            eprintln!("wasi-udp: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Trap(error)) => {
            eprintln!("wasi-udp: the guest trapped: {}", error.root_cause());
            if verbosity > 0 {
                eprintln!("{error:?}");
            } else {
                eprintln!("wasi-udp: run with -v for the wasm backtrace");
            }
            ExitCode::from(EXIT_TRAP)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn guest_arguments_follow_the_component() {
        let Ok(Parsed::Run(options)) = parse(&["-v", "--env", "A=1", "g.wasm", "-v", "x"]) else {
            panic!("should parse");
        };
        assert_eq!(options.component, PathBuf::from("g.wasm"));
        assert_eq!(options.guest_args, ["-v", "x"]);
        assert_eq!(options.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(options.verbosity, 1);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--allow"]).is_err());
        assert!(parse(&["--allow", "10.0.0.0/8:x", "g.wasm"]).is_err());
        assert!(parse(&["--env", "novalue", "g.wasm"]).is_err());
        assert!(parse(&["--bogus", "g.wasm"]).is_err());
        assert!(parse(&["--deny-all", "--inherit-network", "g.wasm"]).is_err());
    }

    #[test]
    fn rules_bases_and_limits_come_from_flags() {
        let Ok(Parsed::Run(options)) = parse(&[
            "--deny-all",
            "--allow",
            "send:10.0.0.0/8:53",
            "--deny",
            "10.0.0.5",
            "--max-sockets",
            "8",
            "--send-rate",
            "100",
            "--explain-policy",
        ]) else {
            panic!("should parse");
        };
        assert!(options.explain_policy);
        let settings = settings(&options).expect("settings");
        assert_eq!(settings.base, Base::Nothing);
        assert_eq!(settings.limits.max_sockets, 8);
        assert_eq!(settings.limits.send_rate.datagrams_per_second, Some(100));
        let explained = settings.explain();
        assert!(explained.contains("deny  all 10.0.0.5/32"), "{explained}");
        assert!(
            explained.contains("allow send 10.0.0.0/8 port 53"),
            "{explained}"
        );
        assert!(explained.contains("max-sockets        8"), "{explained}");
        assert!(parse(&["--max-sockets", "0", "g.wasm"]).is_err());
        assert!(parse(&["--max-sockets", "many", "g.wasm"]).is_err());
        assert!(parse(&["--deny", "bogus", "g.wasm"]).is_err());
    }
}
