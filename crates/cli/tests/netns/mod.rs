//! Private network namespaces for tests that need addresses other than
//! loopback: each scenario runs on a thread of its own that has left the
//! process's network namespace, so the sockets it makes, the daemons it
//! starts and the `wasi-udp` runs it spawns see only the namespace's `lo`
//! (with the extra addresses the scenario asks for) and whatever devices it
//! adds. Nothing reaches the machine's real network.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Set in CI: a scenario that cannot run (no namespaces, a daemon not
/// installed) fails instead of being skipped.
const REQUIRE: &str = "WASI_UDP_REQUIRE_PEERS";

/// Skips (or, when [`REQUIRE`] is set, fails) with `reason`.
#[track_caller]
pub fn skip(reason: &str) {
    if std::env::var_os(REQUIRE).is_some() {
        panic!("{reason} ({REQUIRE} is set, so this cannot be skipped)");
    }
    eprintln!("skipped: {reason}");
}

/// Runs `scenario` in a fresh network namespace whose `lo` is up and also
/// holds `addresses` (e.g. `10.53.0.53/32`, or `10.99.0.1/24 brd
/// 10.99.0.255` for a broadcast address). `None` when namespaces are not
/// available (the test is skipped, see [`skip`]).
pub fn in_netns<T: Send + 'static>(
    addresses: &[&str],
    scenario: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let addresses: Vec<String> = addresses.iter().map(|a| (*a).to_owned()).collect();
    let thread = std::thread::spawn(move || {
        if let Err(errno) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            return Err(format!(
                "a private network namespace is unavailable ({errno}; needs root or \
                 CAP_SYS_ADMIN)"
            ));
        }
        ip(&["link", "set", "lo", "up"])?;
        for address in &addresses {
            let mut args = vec!["addr", "add"];
            args.extend(address.split_whitespace());
            args.extend(["dev", "lo"]);
            ip(&args)?;
        }
        Ok(scenario())
    });
    match thread.join() {
        Ok(Ok(value)) => Some(value),
        Ok(Err(reason)) => {
            skip(&reason);
            None
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `ip ARGS` in the calling thread's namespace.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` (iproute2) is not available: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Whether `program` is on the PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| std::path::Path::new(dir).join(program).is_file())
    })
}

/// The path of a system program, looking in the sbin folders too.
pub fn program(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin"] {
        let path = std::path::Path::new(dir).join(name);
        if path.is_file() {
            return path.display().to_string();
        }
    }
    name.to_owned()
}

/// A daemon this test started; killed (by its PID) and reaped when dropped.
pub struct Daemon {
    child: Child,
    name: String,
}

impl Daemon {
    /// Starts `command` with its output discarded.
    pub fn start(name: &str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
        }
    }

    /// Panics if the daemon has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` to `server` from `from` every 100 ms until a reply from
/// the server's port comes (returned) or `within` passes (`None`). Any
/// source address counts: a server bound to a wildcard address answers
/// from whichever address the kernel picks, and between two addresses of
/// one `lo` that is the client's own.
pub fn ask(
    from: &UdpSocket,
    server: SocketAddr,
    request: &[u8],
    within: Duration,
) -> Option<Vec<u8>> {
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let deadline = Instant::now() + within;
    let mut buffer = vec![0; 65_536];
    while Instant::now() < deadline {
        let _ = from.send_to(request, server);
        if let Ok((len, source)) = from.recv_from(&mut buffer)
            && source.port() == server.port()
        {
            return Some(buffer[..len].to_vec());
        }
    }
    None
}

/// Runs `wasi-udp ARGS` to completion, ended after `within` if it is still
/// running.
pub fn wasi_udp(args: &[&str], within: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasi-udp");
    finish(child, within)
}

/// Waits for `child` (ours) for at most `within`, then kills it, and
/// returns what it printed.
pub fn finish(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().expect("collect wasi-udp's output")
}

/// What a run printed, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Makes the calling thread (in its own network namespace) see
/// `resolv_conf` as `/etc/resolv.conf`, in a mount namespace of its own,
/// so that the system resolver asks the namespace's DNS server.
pub fn use_resolver(resolv_conf: &std::path::Path) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("a private mount namespace is unavailable ({e})"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make mounts private ({e})"))?;
    mount(
        Some(resolv_conf),
        "/etc/resolv.conf",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("cannot bind-mount a resolv.conf ({e})"))
}
