//! The multi-tenant workload: many stores on one engine, each doing round
//! trips between two sockets of its own, all at once on a two-thread
//! runtime, the way an embedder hosting many guests runs them. Measures the
//! total rate, how evenly the stores were served, latency and memory.

use std::time::{Duration, Instant};

use wasi_udp_host::{UdpCtx, UdpCtxView, UdpView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

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

/// What one run of the workload measured.
pub struct StoresResult {
    /// Round trips per second, all stores together.
    pub total_rate: f64,
    /// Each store's round trips per second, over its own run: min, median,
    /// max.
    pub per_store: (f64, f64, f64),
    /// The 99th percentile round trip over every store, in µs.
    pub p99_us: f64,
    /// Peak resident memory during the workload, in KiB.
    pub peak_kib: f64,
}

/// Runs `stores` stores of `rounds` round trips each of `guest` (the
/// ping-pong guest) on this provider (`ours`) or on wasmtime-wasi's UDP.
pub fn run(guest: &str, ours: bool, stores: usize, rounds: usize) -> Result<StoresResult, String> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let mut linker = Linker::<Tenant>::new(&engine);
    let linked = if ours {
        wasi_udp_host::add_command_to_linker_async(&mut linker)
    } else {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
    };
    linked.map_err(|e| e.to_string())?;
    let component = Component::from_file(&engine, guest).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let ticker = engine.weak();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let ticking = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let Some(engine) = ticker.upgrade() else {
                break;
            };
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    // Compiling and linking do not count.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let outcomes: Vec<Result<(Duration, Vec<f64>), String>> = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..stores {
            let (engine, linker, component) = (engine.clone(), linker.clone(), component.clone());
            tasks.spawn(async move {
                let stdout = MemoryOutputPipe::new(1 << 20);
                let mut wasi = WasiCtx::builder();
                wasi.stdout(stdout.clone())
                    .arg("bench_pingpong")
                    .arg(rounds.to_string());
                if !ours {
                    wasi.allow_udp(true).socket_addr_check(|addr, use_| {
                        Box::pin(async move {
                            addr.ip().is_loopback()
                                || (matches!(use_, SocketAddrUse::UdpBind)
                                    && addr.ip().is_unspecified())
                        })
                    });
                }
                let udp = UdpCtx::builder().allow_loopback().build();
                let mut store = Store::new(
                    &engine,
                    Tenant {
                        wasi: wasi.build(),
                        udp,
                        table: ResourceTable::new(),
                    },
                );
                store.epoch_deadline_async_yield_and_update(1);
                let start = Instant::now();
                let command = Command::instantiate_async(&mut store, &component, &linker)
                    .await
                    .map_err(|e| e.to_string())?;
                match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => {}
                    other => return Err(format!("{other:?}")),
                }
                let elapsed = start.elapsed();
                let text = String::from_utf8_lossy(&stdout.contents()).into_owned();
                let rtts: Vec<f64> = text
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|n| n.parse().ok())
                    .collect();
                Ok((elapsed, rtts))
            });
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            outcomes.push(outcome.map_err(|e| e.to_string()).and_then(|o| o));
        }
        outcomes
    });
    let wall = started.elapsed();
    let peak_kib = crate::peak_resident_kib();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticking.join();

    let mut rates = Vec::with_capacity(stores);
    let mut all_rtts = Vec::with_capacity(stores * rounds);
    for outcome in outcomes {
        let (elapsed, rtts) = outcome?;
        rates.push(rounds as f64 / elapsed.as_secs_f64());
        all_rtts.extend(rtts);
    }
    if all_rtts.is_empty() {
        return Err("no round trips printed".into());
    }
    rates.sort_by(f64::total_cmp);
    let (_, p99) = crate::latency_sample(&mut all_rtts);
    Ok(StoresResult {
        total_rate: (stores * rounds) as f64 / wall.as_secs_f64(),
        per_store: (rates[0], rates[rates.len() / 2], rates[rates.len() - 1]),
        p99_us: p99 / 1000.0,
        peak_kib,
    })
}
