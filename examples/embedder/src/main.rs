//! `wasi-udp-embedder CONFIG.toml`: a small multi-tenant server. It loads
//! the guests a configuration file names (see `config.rs`), gives each its
//! own UDP policy and limits, runs them all at once on one engine (pooling
//! allocator, epoch deadlines so that no guest keeps a thread), and when
//! they have all ended, or on SIGINT/SIGTERM, prints each guest's counters
//! and exits.
//!
//! ```text
//! guest   exit      sockets  sent  received  denied  dropped
//! dns     0         1        2     2         0       0
//! rogue   trap      1        0     0         3       0
//! ```

#![forbid(unsafe_code)]

mod config;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use config::GuestConfig;
use wasi_udp_host::{UdpCtx, UdpCtxView, UdpStatsSnapshot, UdpView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// A tenant's store data.
struct Tenant {
    wasi: WasiCtx,
    udp: UdpCtx,
    table: ResourceTable,
}

impl WasiView for Tenant {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl UdpView for Tenant {
    fn udp(&mut self) -> UdpCtxView<'_> {
        UdpCtxView {
            ctx: &mut self.udp,
            table: &mut self.table,
        }
    }
}

/// How a tenant's run ended, and what it did.
struct Report {
    name: String,
    exit: String,
    stats: UdpStatsSnapshot,
    stdout: String,
}

/// One engine for every tenant: instances come from a pool sized for them,
/// and epoch ticks make a guest that never calls the host yield.
fn engine(tenants: usize) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = u32::try_from(tenants.max(1)).unwrap_or(u32::MAX);
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(4))
        .total_tables(slots.saturating_mul(8))
        .max_memory_size(64 << 20);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true);
    Engine::new(&config)
}

async fn run_tenant(
    engine: Engine,
    linker: Arc<Linker<Tenant>>,
    component: Component,
    guest: GuestConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Report {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let mut wasi = WasiCtx::builder();
    wasi.stdout(stdout.clone())
        .inherit_stderr()
        .arg(&guest.name)
        .args(&guest.args);
    let udp = guest.udp_ctx();
    let fuel = udp.limits().hostcall_fuel();
    let mut store = Store::new(
        &engine,
        Tenant {
            wasi: wasi.build(),
            udp,
            table: ResourceTable::new(),
        },
    );
    store.set_hostcall_fuel(fuel);
    store.epoch_deadline_async_yield_and_update(1);
    let name = guest.name.clone();
    let guest_run = async {
        match Command::instantiate_async(&mut store, &component, &linker).await {
            Err(error) => format!("cannot instantiate: {error}"),
            Ok(command) => match command.wasi_cli_run().call_run(&mut store).await {
                Ok(Ok(())) => "0".into(),
                Ok(Err(())) => "1".into(),
                Err(error) => match error.downcast_ref::<I32Exit>() {
                    Some(I32Exit(code)) => code.to_string(),
                    None => {
                        tracing::warn!("{name}: trapped: {}", error.root_cause());
                        "trap".into()
                    }
                },
            },
        }
    };
    // Stopping drops the guest's call wherever it is (a guest waiting in
    // the host included); its store, and so its counters, remain.
    let exit = tokio::select! {
        exit = guest_run => exit,
        _ = stop.wait_for(|stop| *stop) => "stopped".into(),
    };
    Report {
        name: guest.name,
        exit,
        stats: store.data().udp.stats(),
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
    }
}

fn print_table(reports: &[Report]) {
    println!(
        "{:<12} {:<9} {:>8} {:>8} {:>9} {:>7} {:>8}",
        "guest", "exit", "sockets", "sent", "received", "denied", "dropped"
    );
    for report in reports {
        let stats = &report.stats;
        println!(
            "{:<12} {:<9} {:>8} {:>8} {:>9} {:>7} {:>8}",
            report.name,
            report.exit,
            stats.sockets_created,
            stats.datagrams_sent,
            stats.datagrams_received,
            stats.denied,
            stats.datagrams_dropped()
        );
    }
}

async fn run(config_path: PathBuf) -> wasmtime::Result<()> {
    let guests = config::read(&config_path).map_err(wasmtime::Error::msg)?;
    let engine = engine(guests.len())?;
    let mut linker = Linker::new(&engine);
    wasi_udp_host::add_command_to_linker_async(&mut linker)?;
    let linker = Arc::new(linker);

    // Each component is compiled once, however many tenants run it.
    let mut components: HashMap<PathBuf, Component> = HashMap::new();
    for guest in &guests {
        if !components.contains_key(&guest.component) {
            let component = Component::from_file(&engine, &guest.component).map_err(|e| {
                wasmtime::Error::msg(format!(
                    "{}: {}: {e:#}",
                    guest.name,
                    guest.component.display()
                ))
            })?;
            components.insert(guest.component.clone(), component);
        }
    }

    // Handlers first, so that a signal during start-up is caught too.
    let signal = stop_signal()?;
    tokio::pin!(signal);
    let stop_ticking = Arc::new(AtomicBool::new(false));
    let ticker = {
        let engine = engine.weak();
        let stop = stop_ticking.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let names: Vec<String> = guests.iter().map(|g| g.name.clone()).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for (index, guest) in guests.into_iter().enumerate() {
        let component = components[&guest.component].clone();
        let task = run_tenant(
            engine.clone(),
            linker.clone(),
            component,
            guest,
            stopped.clone(),
        );
        tasks.spawn(async move { (index, task.await) });
    }
    let mut reports: Vec<Option<Report>> = names.iter().map(|_| None).collect();
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok((index, report))) => reports[index] = Some(report),
                Some(Err(error)) => tracing::warn!("a tenant's task failed: {error}"),
                None => break,
            },
            name = &mut signal, if !*stop.borrow() => {
                tracing::warn!("{name}: stopping every guest");
                let _ = stop.send(true);
            }
        }
    }
    stop_ticking.store(true, Ordering::Relaxed);
    let _ = ticker.join();

    let reports: Vec<Report> = reports
        .into_iter()
        .zip(names)
        .map(|(report, name)| {
            report.unwrap_or(Report {
                name,
                exit: "stopped".into(),
                stats: UdpStatsSnapshot::default(),
                stdout: String::new(),
            })
        })
        .collect();
    for report in &reports {
        for line in report.stdout.lines() {
            println!("[{}] {line}", report.name);
        }
    }
    print_table(&reports);
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves
/// with the name of the first to arrive.
fn stop_signal() -> wasmtime::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let Some(config) = std::env::args_os().nth(1) else {
        eprintln!("usage: wasi-udp-embedder CONFIG.toml");
        return std::process::ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasi-udp-embedder: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(PathBuf::from(config))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasi-udp-embedder: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
