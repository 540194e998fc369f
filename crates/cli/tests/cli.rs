//! The `wasi-udp` binary end to end: guests, policy flags, exit codes, and
//! one clear line for input that cannot run.

use std::path::Path;
use std::process::{Command, Output};

fn wasi_udp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasi-udp"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run wasi-udp")
}

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

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn runs_a_udp_guest_on_loopback_by_default() {
    let output = wasi_udp(&[guest("udp_send_receive")]);
    assert_exit(&output, 0);
    let output = wasi_udp(&[guest("udp_std_net")]);
    assert_exit(&output, 0);
    assert!(text(&output.stdout).contains("std::net::UdpSocket works"));
}

#[test]
fn runs_guests_whichever_0_2_version_they_import() {
    for name in [
        "udp_import_v0_2_0",
        "udp_import_v0_2_12",
        "udp_std_net",
        "udp_poll_many",
    ] {
        let output = wasi_udp(&[guest(name)]);
        assert_exit(&output, 0);
    }
}

#[test]
fn passes_arguments_and_environment_and_returns_the_exit_code() {
    let output = wasi_udp(&[
        "--env",
        "WASI_UDP_GREETING=hello",
        guest("cli_args_env_exit"),
        "0",
        "-v",
    ]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("args: 0 -v"), "{stdout}");
    assert!(stdout.contains("greeting: hello"), "{stdout}");
    // WASI 0.2's wasi:cli/exit carries success or failure; any failure is 1.
    let output = wasi_udp(&[guest("cli_args_env_exit"), "7"]);
    assert_exit(&output, 1);
}

#[test]
fn deny_all_refuses_loopback_and_says_how_to_grant_it() {
    let output = wasi_udp(&["--deny-all", "-v", guest("udp_send_receive")]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("denied: bind 127.0.0.1:0"), "{stderr}");
    assert!(stderr.contains("--allow bind:127.0.0.1:0"), "{stderr}");

    // Refusals are warnings: shown at the default verbosity too.
    let output = wasi_udp(&["--deny-all", guest("udp_send_receive")]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("denied: bind 127.0.0.1:0"), "{stderr}");
    assert!(stderr.contains("--allow bind:127.0.0.1:0"), "{stderr}");
}

#[test]
fn allow_and_inherit_network_grant_more() {
    // The guest expects address-not-bindable for 192.0.2.1; loopback-only
    // refuses the bind before the kernel sees it, --allow lets it through.
    let output = wasi_udp(&[guest("udp_bind_not_bindable")]);
    assert_exit(&output, 134);
    let output = wasi_udp(&["--allow", "192.0.2.0/24:0", guest("udp_bind_not_bindable")]);
    assert_exit(&output, 0);
    let output = wasi_udp(&["--inherit-network", guest("udp_send_receive")]);
    assert_exit(&output, 0);
}

#[test]
fn deny_rules_refuse_what_the_base_allows_and_name_the_rule() {
    let output = wasi_udp(&["--deny", "connect:127.0.0.1", guest("udp_send_receive")]);
    assert_exit(&output, 0);
    let output = wasi_udp(&[
        "--deny",
        "send:127.0.0.0/8",
        "-v",
        guest("udp_send_receive"),
    ]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("refused by the rule `deny send 127.0.0.0/8`"),
        "{stderr}"
    );
    // --inherit-network keeps deny rules.
    let output = wasi_udp(&[
        "--inherit-network",
        "--deny",
        "send:127.0.0.0/8",
        guest("udp_send_receive"),
    ]);
    assert_ne!(output.status.code(), Some(0));
}

fn policy_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasi-udp-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("policy.toml");
    std::fs::write(&path, contents).expect("write policy");
    path
}

#[test]
fn explain_policy_prints_the_effective_rules_and_limits() {
    let output = wasi_udp(&["--explain-policy"]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("base: loopback"), "{stdout}");
    assert!(
        stdout.contains("allow connect,send,receive 127.0.0.0/8"),
        "{stdout}"
    );
    assert!(
        stdout.contains("allow bind 127.0.0.0/8 ports 1024-65535"),
        "{stdout}"
    );
    assert!(stdout.contains("allow bind 0.0.0.0/32 port 0"), "{stdout}");
    assert!(stdout.contains("max-sockets        1024"), "{stdout}");
    assert!(stdout.contains("send-rate          unlimited"), "{stdout}");

    let path = policy_file(
        "explain",
        "base = \"none\"\nallow = [\"send,connect:10.0.0.0/8:53\"]\ndeny = [\"10.0.0.5\"]\n\
         [limits]\nmax-sockets = 16\nsend-rate = 1000\n",
    );
    let output = wasi_udp(&[
        "--policy",
        path.to_str().expect("path"),
        "--max-sockets",
        "4",
        "--explain-policy",
    ]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("base: none"), "{stdout}");
    assert!(stdout.contains("deny  all 10.0.0.5/32"), "{stdout}");
    assert!(
        stdout.contains("allow connect,send 10.0.0.0/8 port 53"),
        "{stdout}"
    );
    assert!(!stdout.contains("127.0.0.0/8"), "{stdout}");
    assert!(stdout.contains("max-sockets        4"), "{stdout}");
    assert!(
        stdout.contains("send-rate          1000 datagrams/s"),
        "{stdout}"
    );

    let bad = policy_file("bad", "allow = [\"nonsense\"]\n");
    let output = wasi_udp(&["--policy", bad.to_str().expect("path"), "--explain-policy"]);
    assert_exit(&output, 2);
    assert!(text(&output.stderr).contains("allow `nonsense`"));
}

#[test]
fn a_policy_file_and_limit_flags_apply_to_the_guest() {
    // The file grants loopback explicitly on a base of nothing and caps
    // sockets at 8; the guest counts the sockets it gets.
    let path = policy_file(
        "limits",
        "base = \"none\"\nallow = [\"127.0.0.0/8\", \"bind:0.0.0.0\"]\n[limits]\nmax-sockets = 8\n",
    );
    let output = wasi_udp(&[
        "--policy",
        path.to_str().expect("path"),
        guest("udp_new_socket_limit"),
    ]);
    assert_exit(&output, 0);
    assert!(text(&output.stdout).contains("limit reached at 8 sockets"));

    let output = wasi_udp(&[
        "--max-datagram-size",
        "1000",
        guest("limit_datagram_size"),
        "1000",
    ]);
    assert_exit(&output, 0);

    let output = wasi_udp(&["--send-rate", "200", guest("limit_send_rate"), "60", "100"]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    let zero_permits: u64 = stdout
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .expect("zero_permits");
    assert!(zero_permits >= 1, "{stdout}");
}

#[test]
fn running_out_of_descriptors_is_new_socket_limit_too() {
    // With the store's limit out of reach, the process's descriptor limit
    // is what the guest runs into.
    let script = format!(
        "ulimit -n 64 && exec '{}' --max-sockets 100000 '{}'",
        env!("CARGO_BIN_EXE_wasi-udp"),
        guest("udp_new_socket_limit")
    );
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_remove("RUST_LOG")
        .output()
        .expect("run wasi-udp under ulimit");
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    let reached: usize = stdout
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(reached < 64, "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("socket budget") && stderr.contains("RLIMIT_NOFILE 64"),
        "{stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}

#[test]
fn a_trap_prints_its_reason_and_exits_134() {
    let output = wasi_udp(&[guest("udp_send_without_check_send")]);
    assert_exit(&output, 134);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "the guest trapped: outgoing-datagram-stream.send called without a preceding check-send"
        ),
        "{stderr}"
    );
}

#[test]
fn input_that_cannot_run_gets_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("wasi-udp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let text_file = write("notes.txt", b"hello");
    let core = write("core.wasm", b"\0asm\x01\0\0\0");
    let empty_component = write("empty.wasm", b"\0asm\x0d\0\x01\0");
    let cases: [(&Path, &str); 4] = [
        (Path::new("/nonexistent/guest.wasm"), "cannot read"),
        (&text_file, "is not a WebAssembly file"),
        (&core, "is a core WebAssembly module"),
        (&empty_component, "does not export wasi:cli/run"),
    ];
    for (path, message) in cases {
        let output = wasi_udp(&[path.to_str().expect("utf-8 path")]);
        assert_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(stderr.contains(message), "{path:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{path:?}: one line, got {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
    for args in [&["--allow", "nonsense", "x.wasm"][..], &["--bogus"], &[]] {
        let output = wasi_udp(args);
        assert_exit(&output, 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_and_version() {
    let output = wasi_udp(&["--help"]);
    assert_exit(&output, 0);
    let help = text(&output.stdout);
    for flag in [
        "--allow <RULE>",
        "--allow-name-lookup",
        "--dir <HOST[::GUEST]>",
        "--timeout <DURATION>",
        "--max-memory <BYTES>",
        "--no-cache",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let output = wasi_udp(&["--version"]);
    assert_exit(&output, 0);
}

/// The conformance suite through the binary, as any external host would be
/// run: every guest that needs no special host configuration passes.
#[test]
fn the_binary_passes_the_conformance_suite_as_an_external_host() {
    use wasi_udp_conformance::hosts::Against;
    use wasi_udp_conformance::report::{self, Verdict};
    let command = format!("'{}' {{wasm}}", env!("CARGO_BIN_EXE_wasi-udp"));
    let against = Against::parse(&command).expect("command host");
    let outcomes = wasi_udp_conformance::run_suite(
        &against,
        wasi_udp_conformance::suite::cases(),
        false,
        |_| {},
    );
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Failed(_)))
        .map(report::line)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let passed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Passed))
        .count();
    assert!(passed >= 60, "{}", report::closing_line(&outcomes));
}

#[test]
fn ambiguous_or_misspelled_rules_are_refused_with_the_reason() {
    for (rule, expected) in [
        ("::1:53", "write `[::1]:53` for port 53"),
        ("send,recv:127.0.0.1", "unknown use `recv`"),
        ("sned:10.0.0.0/8", "unknown use `sned`"),
        ("10.0.0.1/0", "bits set beyond the prefix"),
        ("::ffff:10.0.0.5", "write `10.0.0.5`"),
    ] {
        let output = wasi_udp(&["--allow", rule, "--explain-policy"]);
        assert_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{rule}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: invalid value '{rule}' for '--allow <RULE>'"
            )),
            "{rule}: {stderr}"
        );
    }
}

#[test]
fn the_loopback_default_grants_no_fixed_wildcard_or_privileged_port() {
    let output = wasi_udp(&[
        guest("policy_probe"),
        "socket 4",
        "bind 0.0.0.0:999",
        "bind 0.0.0.0:5353",
        "bind 0.0.0.0:0",
        "socket 6",
        "bind [::]:999",
        "bind [::]:0",
        "socket 4",
        "bind 127.0.0.1:5353",
    ]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    for (refused, grant) in [
        ("bind 0.0.0.0:999", "--allow bind:0.0.0.0:999"),
        ("bind 0.0.0.0:5353", "--allow bind:0.0.0.0:5353"),
        ("bind [::]:999", "--allow 'bind:[::]:999'"),
    ] {
        assert!(
            stdout.contains(&format!("> {refused}: error access-denied")),
            "{stdout}"
        );
        assert!(stderr.contains(grant), "{refused}: {stderr}");
    }
    for allowed in ["bind 0.0.0.0:0", "bind [::]:0", "bind 127.0.0.1:5353"] {
        assert!(stdout.contains(&format!("> {allowed}: ok")), "{stdout}");
    }
    // With the rule the warning named, the bind goes through.
    let output = wasi_udp(&[
        "--allow",
        "bind:0.0.0.0:5353",
        guest("policy_probe"),
        "socket 4",
        "bind 0.0.0.0:5353",
    ]);
    assert!(
        text(&output.stdout).contains("> bind 0.0.0.0:5353: ok"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_guest_at_max_sockets_is_told_which_flag_raises_it() {
    let output = wasi_udp(&["--max-sockets", "8", guest("udp_new_socket_limit")]);
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("holds 8 sockets, its max-sockets") && stderr.contains("--max-sockets N"),
        "{stderr}"
    );
    // The first in full, the rest as a count.
    assert!(stderr.lines().count() <= 2, "{stderr}");
}

#[test]
fn refusals_repeated_a_thousand_times_are_logged_once_then_counted() {
    let output = wasi_udp(&[
        "--deny",
        "send:127.0.0.9",
        guest("policy_probe"),
        "socket 4",
        "bind 127.0.0.1:0",
        "unconnect",
        "send-many 1000 127.0.0.9:9 x",
    ]);
    assert_exit(&output, 0);
    assert!(text(&output.stdout).contains("1000x error access-denied"));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.matches("denied: send 127.0.0.9:9").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("refused by the rule `deny send 127.0.0.9/32`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("999 more refused send operations"),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 3, "{stderr}");
}

#[test]
fn warnings_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let output = wasi_udp(&["--deny-all", guest("udp_send_receive")]);
    assert!(
        !text(&output.stderr).contains('\u{1b}'),
        "{:?}",
        text(&output.stderr)
    );
}

#[test]
fn a_byte_rate_bounds_empty_datagrams_too() {
    // 1000 bytes/s: each empty datagram's packet costs 28 bytes, so 60 of
    // them take at least (60 * 28 - 100 - 28) / 1000 s.
    let output = wasi_udp(&[
        "--send-bytes-rate",
        "1000",
        guest("limit_send_rate"),
        "60",
        "0",
    ]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    let elapsed_ns: f64 = stdout
        .split_whitespace()
        .nth(5)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        elapsed_ns / 1e9 >= 0.95 * (60.0 * 28.0 - 128.0) / 1000.0,
        "{stdout}"
    );
    assert!(text(&output.stderr).contains("--send-rate N (or --send-bytes-rate BYTES)"));
}

#[test]
fn explain_policy_says_the_descriptor_budget() {
    let output = wasi_udp(&["--explain-policy"]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("Descriptors: at most") && stdout.contains("RLIMIT_NOFILE"),
        "{stdout}"
    );
}
