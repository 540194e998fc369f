//! `wasi-udp`: runs a `wasi:cli/command` component with wasmtime-wasi and the
//! `wasi-udp-host` UDP provider.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod args;
mod network;
mod settings;

use args::Args;
use clap::Parser;
use settings::{Layer, Settings, read_policy_file};
use wasi_udp_host::{UdpCtx, UdpCtxView, UdpView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};

/// Exit code for bad command-line input or a guest that cannot run.
const EXIT_USAGE: u8 = 2;
/// Exit code when `--timeout` ends the guest (as `timeout(1)` has it).
const EXIT_TIMEOUT: u8 = 124;
/// Exit code for a guest that trapped (as `wasmtime run` does on Unix).
const EXIT_TRAP: u8 = 134;

/// What the CLI's store holds: WASI, UDP, the table they share, and the
/// memory limit.
struct Guest {
    wasi: WasiCtx,
    udp: UdpCtx,
    table: ResourceTable,
    memory: MemoryLimit,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl UdpView for Guest {
    fn udp(&mut self) -> UdpCtxView<'_> {
        UdpCtxView {
            ctx: &mut self.udp,
            table: &mut self.table,
        }
    }
}

/// `--max-memory`: refuses growth past the limit and says so, once.
struct MemoryLimit {
    max: Option<usize>,
    refused: bool,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.max {
            Some(max) if desired > max => {
                if !self.refused {
                    self.refused = true;
                    tracing::warn!(
                        "the guest asked to grow its memory to {desired} bytes, past \
                         --max-memory {max}: refused"
                    );
                }
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Why a run ended other than by the guest's own exit.
enum Failure {
    /// The input cannot run: one line, exit 2.
    Input(String),
    /// The guest trapped.
    Trap(wasmtime::Error),
    /// `--timeout` passed.
    Timeout(Duration),
    /// A signal asked the CLI to stop: the conventional 128 + signal.
    Signal(&'static str, u8),
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
    let started = Instant::now();
    let component = Component::new(engine, &bytes)
        .map_err(|e| Failure::Input(format!("{shown} is not a valid component: {e:#}")))?;
    tracing::info!("{shown} ready in {:?}", started.elapsed());
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

/// The compiled-component cache's folder: `--cache-dir`, else
/// `$XDG_CACHE_HOME/wasi-udp`, else `~/.cache/wasi-udp`.
fn cache_dir(args: &Args) -> Option<PathBuf> {
    if let Some(dir) = &args.cache_dir {
        // wasmtime's cache wants an absolute folder.
        return std::path::absolute(dir).ok();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasi-udp"))
}

fn engine(args: &Args) -> Result<Engine, Failure> {
    let mut config = Config::new();
    if args.timeout.is_some() {
        // Epoch ticks make a guest that never calls the host yield, so the
        // timeout can end it.
        config.epoch_interruption(true);
    }
    if !args.no_cache
        && let Some(dir) = cache_dir(args)
    {
        let mut cache_config = wasmtime::CacheConfig::new();
        cache_config.with_directory(dir);
        match wasmtime::Cache::new(cache_config) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            // Without a cache the component is compiled every run, which is
            // slower but correct.
            Err(error) => tracing::info!("no compiled-component cache: {error:#}"),
        }
    }
    Engine::new(&config).map_err(|e| Failure::Input(format!("cannot set up wasmtime: {e:#}")))
}

/// Whether the guest gets wasmtime-wasi's builtin UDP (`--udp
/// wasmtime-wasi`) instead of this provider's.
fn wasmtime_udp(args: &Args) -> bool {
    args.udp == "wasmtime-wasi"
}

fn wasi_ctx(args: &Args, settings: &Settings, program: &str) -> Result<WasiCtx, Failure> {
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdio().arg(program);
    if wasmtime_udp(args) {
        // wasmtime-wasi asks its address check, once per use; the same
        // rules answer it (replies, limits and warnings are this
        // provider's own and do not apply).
        use wasi_udp_host::UdpPolicy as _;
        let rules = Arc::new(settings.rules.clone());
        wasi.inherit_network()
            .allow_udp(true)
            .allow_ip_name_lookup(settings.name_lookup.uses_system_resolver())
            .socket_addr_check(move |addr, socket_use| {
                let allowed = rules.check(socket_use.into(), addr).is_ok();
                Box::pin(async move { allowed })
            });
    }
    if network::simulated(args) {
        // The guest's clocks run on the simulated network's time.
        let start = tokio::time::Instant::now();
        wasi.monotonic_clock(network::VirtualMonotonic(start))
            .wall_clock(network::VirtualWall(start));
    }
    for arg in args.guest_args() {
        let arg = arg.to_str().ok_or_else(|| {
            Failure::Input(format!("the guest argument {arg:?} is not valid UTF-8"))
        })?;
        wasi.arg(arg);
    }
    if args.inherit_env {
        wasi.inherit_env();
    }
    for (name, value) in &args.env {
        match value {
            Some(value) => {
                wasi.env(name, value);
            }
            None => {
                if let Ok(value) = std::env::var(name) {
                    wasi.env(name, value);
                }
            }
        }
    }
    for (host, guest) in &args.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| Failure::Input(format!("--dir {}: {e:#}", host.display())))?;
    }
    Ok(wasi.build())
}

async fn run(args: &Args, settings: &Settings, component_path: &Path) -> Result<i32, Failure> {
    // Handlers first: a signal that comes while the guest starts must
    // still end it cleanly.
    let signals = Signals::install();
    let engine = engine(args)?;
    let component = load_component(&engine, component_path)?;

    let mut linker = Linker::<Guest>::new(&engine);
    if wasmtime_udp(args) {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Failure::Trap)?;
    } else {
        wasi_udp_host::add_command_to_linker_async(&mut linker).map_err(Failure::Trap)?;
        // Multicast, broadcast and shared ports, for guests that import
        // them; the policy grants none of them unless a rule names them.
        wasi_udp_host::add_extensions_to_linker(&mut linker).map_err(Failure::Trap)?;
    }

    let program = component_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let run_network = network::build(args)
        .map_err(|e| Failure::Input(format!("--pcap: cannot write the capture: {e}")))?;
    let guest = Guest {
        wasi: wasi_ctx(args, settings, &program)?,
        udp: settings.udp_ctx(run_network.network.clone()),
        table: ResourceTable::new(),
        memory: MemoryLimit {
            max: args
                .max_memory
                .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)),
            refused: false,
        },
    };
    let mut store = Store::new(&engine, guest);
    store.limiter(|guest| &mut guest.memory);
    // wasmtime copies a call's arguments before the provider can refuse
    // them: no call needs more than the largest legal send.
    store.set_hostcall_fuel(settings.limits.hostcall_fuel());

    let stop_ticking = Arc::new(AtomicBool::new(false));
    if args.timeout.is_some() {
        store.epoch_deadline_async_yield_and_update(1);
        let ticker = engine.weak();
        let stop = stop_ticking.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(engine) = ticker.upgrade() else {
                    break;
                };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }

    let command = Command::instantiate_async(&mut store, &component, &linker)
        .await
        .map_err(|e| match wasi_udp_host::explain_missing_extensions(&e) {
            Some(explained) => Failure::Input(format!(
                "cannot instantiate {program}: {explained} Run it without --udp wasmtime-wasi."
            )),
            None => Failure::Input(format!("cannot instantiate {program}: {e:#}")),
        })?;
    let guest_run = async {
        match command.wasi_cli_run().call_run(&mut store).await {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(error) => match error.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Ok(*code),
                None => Err(Failure::Trap(error)),
            },
        }
    };
    let outcome = tokio::select! {
        outcome = guest_run => outcome,
        () = deadline(args.timeout) => Err(Failure::Timeout(args.timeout.unwrap_or_default())),
        signal = signals.next() => Err(signal),
    };
    stop_ticking.store(true, Ordering::Relaxed);
    if args.stats {
        network::print_stats(&store.data().udp.socket_stats(), run_network.sim.as_ref());
    }
    if let Some(capture) = &run_network.capture
        && let Err(error) = capture.flush()
    {
        eprintln!("wasi-udp: --pcap: {error}");
    }
    outcome
}

async fn deadline(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(interrupt), Ok(terminate)) => Self(Some((interrupt, terminate))),
            // Without handlers the signals keep their default action.
            _ => Self(None),
        }
    }

    /// Resolves when either arrives.
    async fn next(self) -> Failure {
        let Some((mut interrupt, mut terminate)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => Failure::Signal("SIGINT", 130),
            _ = terminate.recv() => Failure::Signal("SIGTERM", 143),
        }
    }
}

fn init_logging(verbosity: u8) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let default = match verbosity {
        0 => "warn",
        1 => "warn,wasi_udp=info,wasi_udp_host=info",
        _ => "info,wasi_udp_host=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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

/// The settings the command line asks for, reading the policy file if
/// there is one.
fn settings(args: &Args) -> Result<Settings, String> {
    let file = args.policy.as_deref().map(read_policy_file).transpose()?;
    Ok(Settings::merge(file, Layer::from_args(args)?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    raise_descriptor_limit();
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("wasi-udp: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(flag) = network::misplaced_flag(&args) {
        eprintln!("wasi-udp: {flag} shapes the simulated network: add --network sim");
        return ExitCode::from(EXIT_USAGE);
    }
    if wasmtime_udp(&args) {
        let provider_only = [
            (network::simulated(&args), "--network sim"),
            (args.pcap.is_some(), "--pcap"),
            (args.stats, "--stats"),
        ];
        if let Some((_, flag)) = provider_only.iter().find(|(given, _)| *given) {
            eprintln!("wasi-udp: {flag} needs this provider's UDP: drop --udp wasmtime-wasi");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if args.explain_policy {
        println!("{}\n{}", settings.explain(), network::explain(&args));
        return ExitCode::SUCCESS;
    }
    let Some(component) = args.component() else {
        eprintln!("wasi-udp: missing the component to run (see --help)");
        return ExitCode::from(EXIT_USAGE);
    };
    init_logging(args.verbose);
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.enable_all();
    if network::simulated(&args) {
        // Virtual time: whenever everything waits, the clock jumps to the
        // next deadline, so simulated delays cost no real time and a run
        // is the same every time.
        runtime.start_paused(true);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasi-udp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&args, &settings, &component));
    // The guest's last words (its store's throttled counts) come out as the
    // run ends; the blocking pool may hold a name lookup, which is not
    // waited for.
    runtime.shutdown_background();
    match outcome {
        // Exit codes outside 0..=255 are truncated the way POSIX does.
        Ok(code) => ExitCode::from(code as u8),
        Err(Failure::Input(message)) => {
            eprintln!("wasi-udp: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Timeout(timeout)) => {
            eprintln!("wasi-udp: the guest ran longer than --timeout {timeout:?}; ended it");
            ExitCode::from(EXIT_TIMEOUT)
        }
        Err(Failure::Signal(name, code)) => {
            eprintln!("wasi-udp: {name}: ended the guest");
            ExitCode::from(code)
        }
        Err(Failure::Trap(error)) => {
            eprintln!("wasi-udp: the guest trapped: {}", error.root_cause());
            if args.verbose > 0 {
                eprintln!("{error:?}");
            } else {
                eprintln!("wasi-udp: run with -v for the wasm backtrace");
            }
            ExitCode::from(EXIT_TRAP)
        }
    }
}
