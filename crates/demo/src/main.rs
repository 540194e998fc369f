//! The demo: an echo-server guest and a client guest, each in its own store
//! of one engine, exchange datagrams over loopback through the
//! `wasi-udp-host` provider; the host prints what each said and what the
//! provider counted.

#![forbid(unsafe_code)]

use std::time::Duration;

use wasi_udp_host::{UdpCtx, UdpStatsSnapshot, WasiUdpState};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx};

/// How many pings the client sends.
const PINGS: u32 = 5;
/// The whole demo gives up after this long.
const DEADLINE: Duration = Duration::from_secs(30);

/// One guest, ready to run: its store, its component and its captured stdout.
struct Guest {
    name: &'static str,
    store: Store<WasiUdpState>,
    component: Component,
    stdout: MemoryOutputPipe,
}

impl Guest {
    fn new(
        engine: &Engine,
        name: &'static str,
        path: &str,
        args: &[String],
    ) -> wasmtime::Result<Self> {
        let stdout = MemoryOutputPipe::new(1 << 16);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .inherit_stderr()
            .arg(name)
            .args(args);
        let host = WasiUdpState::new(wasi.build(), UdpCtx::builder().allow_loopback().build());
        Ok(Self {
            name,
            store: Store::new(engine, host),
            component: Component::from_file(engine, path)?,
            stdout,
        })
    }

    async fn run(&mut self, linker: &Linker<WasiUdpState>) -> wasmtime::Result<()> {
        let command = Command::instantiate_async(&mut self.store, &self.component, linker).await?;
        let exit = match command.wasi_cli_run().call_run(&mut self.store).await {
            Ok(result) => result.map_err(|()| 1),
            Err(error) => match error.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => Ok(()),
                Some(I32Exit(code)) => Err(*code),
                None => return Err(error),
            },
        };
        exit.map_err(|code| wasmtime::Error::msg(format!("{} exited with {code}", self.name)))
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.stdout.contents()).into_owned()
    }

    fn stats(&self) -> UdpStatsSnapshot {
        self.store.data().udp.stats()
    }
}

/// Waits until the server has said where it listens.
async fn server_address(server_stdout: &MemoryOutputPipe) -> String {
    loop {
        let output = String::from_utf8_lossy(&server_stdout.contents()).into_owned();
        if let Some(address) = output
            .lines()
            .find_map(|line| line.strip_prefix("listening on "))
        {
            return address.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn print_output(guest: &Guest) {
    for line in guest.output().lines() {
        println!("  [{}] {line}", guest.name);
    }
}

async fn demo() -> wasmtime::Result<()> {
    let engine = Engine::new(&Config::new())?;
    let mut linker = Linker::new(&engine);
    wasi_udp_host::add_command_to_linker_async(&mut linker)?;

    println!("host: one engine, two stores, each with its own UdpCtx (loopback only)");
    let mut server = Guest::new(
        &engine,
        "server",
        guest_artifacts::DEMO_ECHO_SERVER,
        &[PINGS.to_string()],
    )?;
    let server_stdout = server.stdout.clone();
    let linker = &linker;

    let client_run = async {
        let address = server_address(&server_stdout).await;
        println!("host: server guest listens on {address}; starting the client guest");
        let mut client = Guest::new(
            &engine,
            "client",
            guest_artifacts::DEMO_CLIENT,
            &[address, PINGS.to_string()],
        )?;
        client.run(linker).await?;
        Ok::<_, wasmtime::Error>(client)
    };
    println!("host: starting the echo-server guest");
    let (server_result, client) = tokio::join!(server.run(linker), client_run);
    let client = client?;
    server_result?;

    println!("host: both guests finished; what they printed:");
    print_output(&server);
    print_output(&client);
    for guest in [&server, &client] {
        let stats = guest.stats();
        println!(
            "host: {} store: {} socket(s) created, {} datagrams sent, {} received, {} denied",
            guest.name,
            stats.sockets_created,
            stats.datagrams_sent,
            stats.datagrams_received,
            stats.denied
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(async { tokio::time::timeout(DEADLINE, demo()).await }) {
        Ok(Ok(())) => {
            println!("demo: ok");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("demo failed: {error:?}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("demo failed: not finished within {DEADLINE:?}");
            std::process::ExitCode::FAILURE
        }
    }
}
