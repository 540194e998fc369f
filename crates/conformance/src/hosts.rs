//! The hosts a guest can run on: this provider and wasmtime-wasi's builtin
//! UDP in-process, or any command line.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasi_udp_host::{Denial, SocketUse, UdpPolicy};
use wasi_udp_host::{UdpCtx, WasiUdpState};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command as CliCommand;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};

use crate::suite::Needs;

/// Longest one guest may run.
pub const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How a guest's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest exited with this code (`wasi:cli/run` success is 0).
    Code(i32),
    /// The guest trapped, with this reason.
    Trap(String),
    /// The run did not end within [`GUEST_TIMEOUT`].
    Timeout,
    /// The host could not run the guest at all.
    HostError(String),
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Run {
    /// How it ended.
    pub exit: Exit,
    /// What the guest printed on stdout.
    pub stdout: String,
    /// What the guest printed on stderr.
    pub stderr: String,
}

/// Where guests run.
pub enum Against {
    /// This repository's provider, in-process.
    Ours(InProcess),
    /// wasmtime-wasi 48's builtin UDP, in-process, stock linker.
    WasmtimeWasi(InProcess),
    /// This repository's provider on its simulated network, in-process:
    /// each run gets a network of its own.
    Sim(InProcess),
    /// A command line with `{wasm}` standing for the guest's path.
    Command(String),
}

impl Against {
    /// `ours`, `wasmtime-wasi`, or a command template.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec {
            "ours" => Ok(Self::Ours(InProcess::new(false)?)),
            "wasmtime-wasi" => Ok(Self::WasmtimeWasi(InProcess::new(true)?)),
            "sim" => Ok(Self::Sim(InProcess::new(false)?.simulated())),
            command if command.contains("{wasm}") => Ok(Self::Command(command.to_owned())),
            other => Err(format!(
                "--against {other}: expected `ours`, `wasmtime-wasi`, `sim` or a command containing {{wasm}}"
            )),
        }
    }

    /// The name used in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Ours(_) => "ours".into(),
            Self::WasmtimeWasi(_) => "wasmtime-wasi".into(),
            Self::Sim(_) => "sim".into(),
            Self::Command(command) => command.clone(),
        }
    }

    /// Whether this host is set up the way `needs` asks; `Err` says why not.
    /// `shaped_loopback` says the process runs where loopback queues
    /// datagrams (see `--shaped-loopback`).
    pub fn provides(&self, needs: Needs, shaped_loopback: bool) -> Result<(), String> {
        match (self, needs) {
            (_, Needs::Loopback) => Ok(()),
            (_, Needs::ShapedLoopback) if shaped_loopback => Ok(()),
            // The simulated loopback is shaped by the host itself.
            (Self::Sim(_), Needs::ShapedLoopback) => Ok(()),
            (_, Needs::ShapedLoopback) => Err(
                "needs a loopback that queues datagrams: run under `unshare -n` with a tbf qdisc on lo \
                 and pass --shaped-loopback (docs/conformance.md)"
                    .into(),
            ),
            (
                Self::Ours(_) | Self::WasmtimeWasi(_) | Self::Sim(_),
                Needs::BindTestNet | Needs::RefusesTestNet | Needs::BindLinkLocal,
            ) => Ok(()),
            (Self::Ours(_) | Self::Sim(_), Needs::SocketLimit(_)) => Ok(()),
            (Self::WasmtimeWasi(_), Needs::SocketLimit(_)) => {
                Err("wasmtime-wasi has no per-store socket limit".into())
            }
            (Self::Command(_), needs) => Err(format!("needs host configuration: {needs:?}")),
        }
    }

    /// Compiles the guest at `path` now, so that a later [`run`](Self::run)
    /// measures only the guest. Does nothing for a command line.
    pub fn prepare(&self, path: &str) -> Result<(), String> {
        match self {
            Self::Ours(host) | Self::WasmtimeWasi(host) | Self::Sim(host) => {
                host.component(path).map(drop)
            }
            Self::Command(_) => Ok(()),
        }
    }

    /// Sets our provider's per-store socket limit (other hosts have none).
    pub fn with_socket_limit(mut self, limit: usize) -> Self {
        if let Self::Ours(host) | Self::Sim(host) = &mut self {
            host.max_sockets = Some(limit);
        }
        self
    }

    /// Runs the guest at `path` with `args`.
    pub fn run(&self, path: &str, args: &[String], needs: Needs) -> Run {
        match self {
            Self::Ours(host) | Self::WasmtimeWasi(host) | Self::Sim(host) => {
                host.run(path, args, needs)
            }
            Self::Command(template) => run_command(template, path, args),
        }
    }
}

/// An engine and linker that run guests in this process.
pub struct InProcess {
    engine: Engine,
    linker: Linker<WasiUdpState>,
    runtime: tokio::runtime::Runtime,
    wasmtime_udp: bool,
    /// Guests compiled so far, by path: a guest run many times (the
    /// differential seeds, benchmark repetitions) is compiled once.
    components: Mutex<HashMap<String, Component>>,
    /// Our provider's socket limit, when not the library default.
    max_sockets: Option<usize>,
    /// Runs on a simulated network instead of the kernel's.
    simulated: bool,
}

/// What every conformance host grants: loopback, and binding to TEST-NET-1
/// and to the link-local fe80::53 (nothing is ever sent there).
fn grants(socket_use: SocketUse, addr: SocketAddr) -> bool {
    let test_net = match addr.ip() {
        IpAddr::V4(ip) => ip.octets()[..3] == [192, 0, 2],
        IpAddr::V6(ip) => ip.segments() == [0xfe80, 0, 0, 0, 0, 0, 0, 0x53],
    };
    addr.ip().is_loopback()
        || (socket_use == SocketUse::Bind
            && (test_net
                || addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                || addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
}

struct ConformancePolicy;

impl UdpPolicy for ConformancePolicy {
    fn check(&self, socket_use: SocketUse, addr: SocketAddr) -> Result<(), Denial> {
        if grants(socket_use, addr) {
            Ok(())
        } else {
            Err(Denial::not_granted("outside the conformance grants"))
        }
    }
}

impl InProcess {
    fn new(wasmtime_udp: bool) -> Result<Self, String> {
        let engine = Engine::new(&Config::new()).map_err(|e| format!("engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        let linked = if wasmtime_udp {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        } else {
            // With the extensions: a guest that does not import them must
            // behave exactly as without.
            wasi_udp_host::add_command_to_linker_async(&mut linker)
                .and_then(|()| wasi_udp_host::add_extensions_to_linker(&mut linker))
        };
        linked.map_err(|e| format!("linker: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Self {
            engine,
            linker,
            runtime,
            wasmtime_udp,
            components: Mutex::new(HashMap::new()),
            max_sockets: None,
            simulated: false,
        })
    }

    fn simulated(mut self) -> Self {
        self.simulated = true;
        self
    }

    fn wasi(
        &self,
        name: &str,
        args: &[String],
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
    ) -> WasiCtxBuilder {
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg(name)
            .args(args);
        if self.wasmtime_udp {
            wasi.allow_udp(true).socket_addr_check(|addr, socket_use| {
                let socket_use = SocketUse::from(socket_use);
                Box::pin(async move { grants(socket_use, addr) })
            });
        }
        wasi
    }

    /// The guest at `path`, compiled on first use.
    fn component(&self, path: &str) -> Result<Component, String> {
        let mut components = self
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(component) = components.get(path) {
            return Ok(component.clone());
        }
        let component = Component::from_file(&self.engine, path)
            .map_err(|error| format!("load {path}: {error}"))?;
        components.insert(path.to_owned(), component.clone());
        Ok(component)
    }

    fn run(&self, path: &str, args: &[String], needs: Needs) -> Run {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let name = std::path::Path::new(path)
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut udp = UdpCtx::builder();
        udp.policy(ConformancePolicy);
        if let Some(limit) = self.max_sockets {
            // Many sockets for measuring the host's own cost: the kernel
            // buffer budget (which would shrink their buffers) is not what
            // is measured.
            udp.max_sockets(limit).max_store_buffers(usize::MAX);
        }
        if let Needs::SocketLimit(limit) = needs {
            udp.max_sockets(limit);
        }
        if self.simulated {
            let network = wasi_udp_host::SimNetwork::new(1);
            if needs == Needs::ShapedLoopback {
                // As the kernel's loopback with a 1 Mbit/s token bucket.
                network.set_faults(wasi_udp_host::Faults::none().bandwidth(125_000));
            }
            udp.network(std::sync::Arc::new(network.node([])));
        }
        let host = WasiUdpState::new(
            self.wasi(&name, args, &stdout, &stderr).build(),
            udp.build(),
        );
        let component = match self.component(path) {
            Ok(component) => component,
            Err(error) => {
                return Run {
                    exit: Exit::HostError(error),
                    stdout: String::new(),
                    stderr: String::new(),
                };
            }
        };
        let exit = self.runtime.block_on(async {
            let fuel = host.udp.limits().hostcall_fuel();
            let mut store = Store::new(&self.engine, host);
            store.set_hostcall_fuel(fuel);
            let run = async {
                let command =
                    match CliCommand::instantiate_async(&mut store, &component, &self.linker).await
                    {
                        Ok(command) => command,
                        Err(error) => {
                            let reason = wasi_udp_host::explain_missing_extensions(&error)
                                .unwrap_or_else(|| error.to_string());
                            return Exit::HostError(format!("instantiate: {reason}"));
                        }
                    };
                match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Exit::Code(0),
                    Ok(Err(())) => Exit::Code(1),
                    Err(error) => match error.downcast_ref::<I32Exit>() {
                        Some(I32Exit(code)) => Exit::Code(*code),
                        None => Exit::Trap(error.root_cause().to_string()),
                    },
                }
            };
            tokio::time::timeout(GUEST_TIMEOUT, run)
                .await
                .unwrap_or(Exit::Timeout)
        });
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        Run {
            exit,
            stdout: text(&stdout),
            stderr: text(&stderr),
        }
    }
}

/// Runs `template` with `{wasm}` replaced by `path` (shell-quoted) and the
/// guest's arguments appended, through `sh -c`.
fn run_command(template: &str, path: &str, args: &[String]) -> Run {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = template.replace("{wasm}", &quote(path));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    let child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            return Run {
                exit: Exit::HostError(format!("spawn sh -c {line}: {error}")),
                stdout: String::new(),
                stderr: String::new(),
            };
        }
    };
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = out_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = err_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + GUEST_TIMEOUT;
    let exit = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match status.code() {
                    Some(0) => Exit::Code(0),
                    Some(1) => Exit::Code(1),
                    Some(code) => Exit::Trap(format!("exit status {code}")),
                    None => Exit::Trap(format!("{status}")),
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Exit::Timeout;
            }
            Err(error) => break Exit::HostError(format!("wait: {error}")),
        }
    };
    Run {
        exit,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
