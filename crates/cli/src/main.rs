//! `wasi-udp`: runs a `wasi:cli/command` component with wasmtime-wasi and the
//! `wasi-udp-host` UDP provider.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wasi_udp_host::policy::{AllowList, AllowRule, Denial, SocketUse, UdpPolicy};
use wasi_udp_host::{UdpCtx, WasiUdpState};
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

Runs a wasi:cli/command component with wasi:sockets/udp@0.2.1 from wasi-udp-host
(every other WASI 0.2 interface from wasmtime-wasi). Stdio is inherited; ARGS are
passed to the guest; the exit code is the guest's.

UDP policy (default: loopback only, i.e. 127.0.0.0/8 and ::1, plus binding the
wildcard addresses 0.0.0.0 and ::):
  --allow CIDR[:PORT[-PORT]]  also allow bind/connect/send/receive there; IPv6 with
                              ports in brackets: --allow '[fd00::/8]:5000-5100'
  --inherit-network           allow everything the operating system allows
  --deny-all                  allow nothing (not even loopback)

Other options:
  --env K=V                   set an environment variable for the guest (repeatable)
  -v, --verbose               log denied operations (-vv: more); RUST_LOG overrides
  -h, --help                  print this help
  -V, --version               print the version

Exit codes: the guest's own; 2 for bad input; 134 when the guest traps.";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    component: PathBuf,
    guest_args: Vec<String>,
    env: Vec<(String, String)>,
    allow: Vec<AllowRule>,
    inherit_network: bool,
    deny_all: bool,
    verbosity: u8,
}

enum Parsed {
    Run(Options),
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
            "--inherit-network" => options.inherit_network = true,
            "--deny-all" => options.deny_all = true,
            "--allow" => {
                let rule = value("--allow")?;
                options
                    .allow
                    .push(rule.parse().map_err(|e| format!("--allow {rule}: {e}"))?);
            }
            "--env" => {
                let pair = value("--env")?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--env {pair}: expected K=V"))?;
                options.env.push((key.to_owned(), val.to_owned()));
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
    if options.component.as_os_str().is_empty() {
        return Err("missing the component to run (see --help)".into());
    }
    if options.deny_all && (options.inherit_network || !options.allow.is_empty()) {
        return Err("--deny-all cannot be combined with --allow or --inherit-network".into());
    }
    for arg in args {
        options.guest_args.push(text(arg)?);
    }
    Ok(Parsed::Run(options))
}

/// The CLI's policy: the chosen grants, with refusals that say which flag
/// would grant the operation.
struct CliPolicy {
    grants: Box<dyn UdpPolicy>,
}

impl UdpPolicy for CliPolicy {
    fn check(&self, socket_use: SocketUse, addr: std::net::SocketAddr) -> Result<(), Denial> {
        self.grants.check(socket_use, addr).map_err(|denial| {
            let host = match addr.ip() {
                std::net::IpAddr::V4(ip) => format!("{ip}/32:{}", addr.port()),
                std::net::IpAddr::V6(ip) => format!("'[{ip}/128]:{}'", addr.port()),
            };
            Denial {
                reason: format!("{denial}; to grant it: --allow {host} (or --inherit-network)"),
            }
        })
    }
}

fn udp_ctx(options: &Options) -> UdpCtx {
    let mut builder = UdpCtx::builder();
    let grants: Box<dyn UdpPolicy> = if options.inherit_network {
        Box::new(wasi_udp_host::AllowAll)
    } else if options.deny_all {
        Box::new(wasi_udp_host::DenyAll)
    } else {
        let mut list = AllowList::loopback();
        for rule in &options.allow {
            list.push(rule.clone());
        }
        Box::new(list)
    };
    builder.policy(CliPolicy { grants });
    builder.build()
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

async fn run(options: Options) -> Result<i32, Failure> {
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
    let mut store = Store::new(&engine, WasiUdpState::new(wasi.build(), udp_ctx(&options)));
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

fn init_logging(verbosity: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbosity {
        0 => "warn",
        1 => "warn,wasi_udp_host=info",
        _ => "info,wasi_udp_host=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(options)) => options,
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
    match runtime.block_on(run(options)) {
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
    fn denials_name_the_flag_that_grants_them() {
        let options = Options::default();
        let policy = CliPolicy {
            grants: Box::new(AllowList::loopback()),
        };
        let _ = options;
        let denial = policy
            .check(SocketUse::Send, "10.1.2.3:53".parse().expect("addr"))
            .expect_err("denied");
        assert!(denial.reason.contains("--allow 10.1.2.3/32:53"), "{denial}");
    }
}
