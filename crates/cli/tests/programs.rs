//! What programs written elsewhere expect of a runner: names that resolve
//! without sending anything off the machine, preopened directories and
//! environment, a wall-clock timeout, a memory cap, signals, and a compiled
//! component cache.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn guest(name: &str) -> &'static str {
    guest_artifacts::ALL
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest {name}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wasi_udp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run wasi-udp")
}

fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasi-udp-programs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn localhost_resolves_with_no_flags_and_other_names_name_the_flag() {
    let output = wasi_udp(&[guest("cli_probe"), "localhost"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(text(&output.stdout).contains("localhost works"));

    let output = wasi_udp(&[guest("cli_probe"), "resolve", "localhost", "example.com"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("localhost: 127.0.0.1 ::1"), "{stdout}");
    assert!(stdout.contains("example.com: error"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("denied: name lookup of `example.com`")
            && stderr.contains("--allow-name-lookup"),
        "{stderr}"
    );
}

#[test]
fn names_come_from_the_hosts_file() {
    let dir = temp_dir("hosts");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "10.53.0.20 printer.lan\nfd53::20 printer.lan\n").expect("hosts");
    let output = wasi_udp(&[
        "--hosts-file",
        hosts.to_str().expect("path"),
        guest("cli_probe"),
        "resolve",
        "printer.lan",
        "scanner.lan",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("printer.lan: 10.53.0.20 fd53::20"),
        "{}",
        describe(&output)
    );
    assert!(stdout.contains("scanner.lan: error"), "{stdout}");
    let output = wasi_udp(&["--hosts-file", "/nonexistent", "--explain-policy"]);
    assert!(
        text(&output.stdout).contains("Names: IP addresses, localhost, the names in /nonexistent")
    );
}

#[test]
fn directories_and_environment_reach_the_guest() {
    let dir = temp_dir("dir");
    std::fs::write(dir.join("config.txt"), "port = 5300\n").expect("write");
    let mount = format!("{}::/config", dir.display());
    let output = wasi_udp(&[
        "--dir",
        &mount,
        guest("cli_probe"),
        "read",
        "/config/config.txt",
    ]);
    assert_eq!(
        text(&output.stdout),
        "port = 5300\n",
        "{}",
        describe(&output)
    );

    let output = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args([
            "--env",
            "SET=value",
            "--env",
            "PASSED",
            guest("cli_probe"),
            "env",
            "SET",
            "PASSED",
            "OTHER",
        ])
        .env("PASSED", "from the host")
        .env("OTHER", "not passed")
        .output()
        .expect("run");
    assert_eq!(
        text(&output.stdout),
        "SET=value\nPASSED=from the host\nOTHER=\n",
        "{}",
        describe(&output)
    );
    let output = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args(["--inherit-env", guest("cli_probe"), "env", "OTHER"])
        .env("OTHER", "inherited")
        .output()
        .expect("run");
    assert_eq!(
        text(&output.stdout),
        "OTHER=inherited\n",
        "{}",
        describe(&output)
    );
}

#[test]
fn a_timeout_ends_a_spinning_guest_and_a_waiting_one() {
    for mode in ["spin", "wait"] {
        let started = Instant::now();
        let output = wasi_udp(&["--timeout", "1s", guest("cli_probe"), mode]);
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(124),
            "{mode}: {}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("the guest ran longer than --timeout 1s"),
            "{}",
            describe(&output)
        );
        // The guest is ended, not waited for: well before the 30 s a stuck
        // run would take.
        assert!(elapsed < Duration::from_secs(30), "{mode}: {elapsed:?}");
    }
}

#[test]
fn max_memory_refuses_growth_and_says_so() {
    let output = wasi_udp(&["--max-memory", "16MiB", guest("cli_probe"), "alloc", "64"]);
    assert_eq!(output.status.code(), Some(134), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("allocated 1 MiB"), "{stdout}");
    assert!(!stdout.contains("allocated 64 MiB"), "{stdout}");
    assert!(
        text(&output.stderr).contains("past --max-memory 16777216: refused"),
        "{}",
        describe(&output)
    );
    let output = wasi_udp(&["--max-memory", "128MiB", guest("cli_probe"), "alloc", "64"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn sigint_and_sigterm_end_the_guest_with_the_conventional_code() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
            .args([guest("cli_probe"), "wait"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        // The guest says when it waits; only then is the signal sent.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut line = [0u8; 8];
        std::io::Read::read_exact(&mut stdout, &mut line).expect("the guest waits");
        assert_eq!(&line, b"waiting\n");
        let pid = i32::try_from(child.id()).expect("pid");
        kill(Pid::from_raw(pid), signal).expect("signal our child");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{signal} did not end the run");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(code), "{signal}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(
            stderr.contains(&format!("{signal}: ended the guest")),
            "{stderr}"
        );
    }
}

#[test]
fn compiled_components_are_cached_unless_told_not_to() {
    let cache = temp_dir("cache");
    let cache_dir = cache.to_str().expect("path");
    let output = wasi_udp(&["--cache-dir", cache_dir, guest("udp_std_net")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // The compiled code, and when it was written (wasmtime keeps usage
    // statistics beside it, which a hit updates).
    let compiled = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        walk(dir)
            .into_iter()
            .filter(|path| {
                path.components().any(|c| c.as_os_str() == "modules")
                    && path.extension().is_none_or(|ext| ext != "stats")
            })
            .map(|path| {
                let written = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                (path, written)
            })
            .collect()
    };
    let cached = compiled(&cache);
    assert!(!cached.is_empty(), "the compiled component is in the cache");
    let output = wasi_udp(&["--cache-dir", cache_dir, guest("udp_std_net")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        compiled(&cache),
        cached,
        "the second run reused it, unchanged"
    );

    let uncached = temp_dir("no-cache");
    let output = wasi_udp(&[
        "--no-cache",
        "--cache-dir",
        uncached.to_str().expect("path"),
        guest("udp_std_net"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(walk(&uncached).is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}
