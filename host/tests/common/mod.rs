//! Runs a guest component in-process on this crate's provider, the way an
//! embedder would, with stdout and stderr captured.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::LazyLock;
use std::time::Duration;

use wasi_udp_host::{UdpCtx, UdpCtxBuilder, UdpStatsSnapshot, WasiUdpState};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx};

/// Longest a guest may run before the test fails.
const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let mut config = Config::new();
    // Epoch ticks make a guest that spins without calling the host yield,
    // so GUEST_TIMEOUT can end it.
    config.epoch_interruption(true);
    let engine = Engine::new(&config).expect("engine");
    let ticker = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    engine
});

/// Every interface, the extensions included: guests that do not import
/// them run exactly as without.
static LINKER: LazyLock<Linker<WasiUdpState>> = LazyLock::new(|| {
    let mut linker = Linker::new(&ENGINE);
    wasi_udp_host::add_command_to_linker_async(&mut linker).expect("link");
    wasi_udp_host::add_extensions_to_linker(&mut linker).expect("link the extensions");
    linker
});

/// The engine the tests run guests on.
pub fn engine() -> &'static Engine {
    &ENGINE
}

/// An engine without epoch interruption, as a plain embedding (and the CLI)
/// has: a guest that never waits never gives the runtime a turn.
static PLAIN_ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::new(&Config::new()).expect("engine"));

static PLAIN_LINKER: LazyLock<Linker<WasiUdpState>> = LazyLock::new(|| {
    let mut linker = Linker::new(&PLAIN_ENGINE);
    wasi_udp_host::add_command_to_linker_async(&mut linker).expect("link");
    linker
});

/// How a guest run ended.
#[derive(Debug)]
pub struct Outcome {
    /// `Ok(code)` for a normal exit, `Err(message)` for a trap.
    pub exit: Result<i32, String>,
    pub stdout: String,
    pub stderr: String,
    pub stats: UdpStatsSnapshot,
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.exit, self.stdout, self.stderr
        )
    }
}

/// The versions of `wasi:sockets/udp` the guest `name` imports.
pub fn udp_import_versions(name: &str) -> Vec<String> {
    let component = Component::from_file(&ENGINE, guest_path(name)).expect("load guest component");
    let mut versions: Vec<String> = component
        .component_type()
        .imports(&ENGINE)
        .filter_map(|(import, _)| import.strip_prefix("wasi:sockets/udp@").map(str::to_owned))
        .collect();
    versions.sort();
    versions
}

/// The path of the guest called `name`.
pub fn guest_path(name: &str) -> &'static str {
    guest_artifacts::ALL
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest named {name}"))
}

/// The UDP context the tests use: loopback, plus binding (never sending) to
/// TEST-NET-1, which no interface has, so `address-not-bindable` is
/// reachable without touching a real network, and to the link-local
/// fe80::53, so the kernel's answer to a link-local address without a scope
/// is reachable too.
pub fn test_udp_ctx() -> UdpCtxBuilder {
    let mut builder = UdpCtx::builder();
    builder
        .allow_loopback()
        .allow("bind:192.0.2.0/24".parse().expect("rule"))
        .allow("bind:[fe80::53]".parse().expect("rule"));
    builder
}

/// Runs the guest `name` with `udp` and returns how it ended.
pub fn run(name: &str, udp: UdpCtx) -> Outcome {
    run_with_args(name, udp, &[])
}

/// Runs the guest `name` with `udp` and `args` and returns how it ended.
pub fn run_with_args(name: &str, udp: UdpCtx, args: &[&str]) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run_async(name, udp, args))
}

/// [`run_with_args`] on an engine without epoch interruption: the guest runs
/// until it waits or ends, never yielding otherwise.
pub fn run_unyielding(name: &str, udp: UdpCtx, args: &[&str]) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run_on(&PLAIN_ENGINE, &PLAIN_LINKER, name, udp, args))
}

/// [`run_with_args`] inside whatever runtime the caller has, so that several
/// stores can run at once.
pub async fn run_async(name: &str, udp: UdpCtx, args: &[&str]) -> Outcome {
    run_on(&ENGINE, &LINKER, name, udp, args).await
}

async fn run_on(
    engine: &Engine,
    linker: &Linker<WasiUdpState>,
    name: &str,
    udp: UdpCtx,
    args: &[&str],
) -> Outcome {
    run_component(engine, linker, guest_path(name), name, udp, args).await
}

/// Runs the component at `path` (e.g. an example's) with `udp` and `args`,
/// inside whatever runtime the caller has.
pub async fn run_path_async(path: &str, udp: UdpCtx, args: &[&str]) -> Outcome {
    let name = std::path::Path::new(path)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    run_component(&ENGINE, &LINKER, path, &name, udp, args).await
}

async fn run_component(
    engine: &Engine,
    linker: &Linker<WasiUdpState>,
    path: &str,
    name: &str,
    udp: UdpCtx,
    args: &[&str],
) -> Outcome {
    let component = Component::from_file(engine, path).expect("load guest component");
    let stdout = MemoryOutputPipe::new(1 << 20);
    let stderr = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .arg(name)
        .args(args)
        .build();
    let fuel = udp.limits().hostcall_fuel();
    let mut store = Store::new(engine, WasiUdpState::new(wasi, udp));
    store.set_hostcall_fuel(fuel);
    if Engine::same(engine, &ENGINE) {
        store.epoch_deadline_async_yield_and_update(1);
    }
    let run = async {
        match Command::instantiate_async(&mut store, &component, linker).await {
            Err(error) => Err(format!("instantiate: {error:?}")),
            Ok(command) => match command.wasi_cli_run().call_run(&mut store).await {
                Ok(Ok(())) => Ok(0),
                Ok(Err(())) => Ok(1),
                Err(error) => match error.downcast_ref::<I32Exit>() {
                    Some(I32Exit(code)) => Ok(*code),
                    // The trap's cause, without the wasm backtrace.
                    None => Err(format!("{:#}", error.root_cause())),
                },
            },
        }
    };
    let exit = tokio::time::timeout(GUEST_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| Err(format!("guest ran longer than {GUEST_TIMEOUT:?}")));
    let stats = store.data().udp.stats();
    let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
    Outcome {
        exit,
        stdout: text(&stdout),
        stderr: text(&stderr),
        stats,
    }
}

/// Runs `name` with the test context and panics unless it exits 0.
pub fn expect_pass(name: &str) -> Outcome {
    let outcome = run(name, test_udp_ctx().build());
    assert_eq!(
        outcome.exit,
        Ok(0),
        "guest {name} failed\n{}",
        outcome.describe()
    );
    outcome
}

/// Runs `name` and panics unless it traps with a message containing `needle`
/// after printing `reached` on stdout (so the trap came where intended).
pub fn expect_trap(name: &str, reached: &str, needle: &str) -> Outcome {
    let outcome = run(name, test_udp_ctx().build());
    match &outcome.exit {
        Err(message) if message.contains(needle) => {}
        _ => panic!(
            "guest {name} should trap with `{needle}`\n{}",
            outcome.describe()
        ),
    }
    assert!(
        outcome.stdout.contains(reached),
        "guest {name} trapped before `{reached}`\n{}",
        outcome.describe()
    );
    outcome
}
