//! Every guest (conformance, limits, hostile), run in-process on this provider.

mod common;

use common::{expect_pass, expect_trap, run, run_with_args, test_udp_ctx};

/// A guest without a test here fails to compile.
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that the test exists")]
        use self::$name as _;
    };
}
guest_artifacts::foreach_guest!(assert_test_exists);

/// Tests for guests that pass by exiting 0 under the test context.
macro_rules! passing {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            expect_pass(stringify!($name));
        }
    )*};
}

passing!(
    udp_create_socket_families,
    udp_bind_local_address,
    udp_bind_state_errors,
    udp_bind_invalid_address,
    udp_bind_address_in_use,
    udp_bind_not_bindable,
    udp_stream_requires_bind,
    udp_stream_invalid_remote,
    udp_remote_address,
    udp_send_receive,
    udp_connected_exchange,
    udp_send_invalid_arguments,
    udp_send_empty_with_permit,
    udp_receive_zero_and_empty,
    udp_datagram_sizes,
    udp_socket_options,
    udp_restream_after_pending_receive,
    udp_restream_keeps_queued_datagram,
    udp_disconnect_keeps_port,
    udp_icmp_connection_refused,
    udp_receive_error_not_lost,
    udp_send_error_not_lost,
    udp_poll_many,
    udp_drop_socket_before_streams,
    udp_drop_stream_before_pollable,
    udp_access_denied,
    udp_send_connected_other_address,
    udp_send_unconnected_no_address,
    udp_send_unspecified_address,
    udp_send_port_zero,
    udp_send_wrong_family,
    udp_send_ipv4_mapped,
    udp_send_partial_batch,
    udp_receive_more_than_queued,
    udp_many_datagrams_in_order,
    udp_bulk_runs_small_receives,
    udp_connect_a_then_b_keeps_port,
    udp_start_bind_twice,
    udp_finish_bind_without_start,
    udp_finish_bind_twice,
    udp_local_address_between_binds,
    udp_stream_between_binds,
    udp_icmp_unconnected_no_error,
    udp_poll_reuse_one_pollable,
    udp_drop_socket_before_its_pollable,
    udp_std_send_to_recv_from,
    udp_std_connect_peer_addr,
    udp_std_nonblocking_would_block,
    udp_std_reconnect,
    udp_std_ipv6,
    udp_check_send_fresh_stream,
    udp_receive_never_would_block,
    udp_hop_limit_zero_invalid,
    udp_buffer_size_zero_invalid,
    udp_subscribe_socket_ready,
    udp_ipv6_address_fields,
    udp_receive_without_polling,
    udp_ipv6_flow_info_peer,
    udp_buffer_size_reads_back,
    udp_bind_link_local_without_scope,
);

/// The probe guest itself; `tests/policy.rs` runs it under many policies.
#[test]
fn policy_probe() {
    let outcome = run_with_args(
        "policy_probe",
        test_udp_ctx().build(),
        &["socket 4", "bind 127.0.0.1:0", "unconnect", "local"],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(
        outcome.stdout.contains("> local: ok 127.0.0.1:"),
        "{outcome:?}"
    );
}

#[test]
fn udp_send_without_check_send() {
    expect_trap(
        "udp_send_without_check_send",
        "about to send",
        "without a preceding check-send",
    );
}

#[test]
fn udp_send_over_permit() {
    expect_trap(
        "udp_send_over_permit",
        "about to send",
        "but check-send permitted",
    );
}

#[test]
fn udp_send_spent_permit() {
    expect_trap(
        "udp_send_spent_permit",
        "about to reuse",
        "without a preceding check-send",
    );
}

#[test]
fn udp_send_empty_without_permit() {
    expect_trap(
        "udp_send_empty_without_permit",
        "about to send nothing",
        "without a preceding check-send",
    );
}

#[test]
fn udp_stream_while_streams_alive() {
    expect_trap(
        "udp_stream_while_streams_alive",
        "about to stream again",
        "still alive",
    );
}

#[test]
fn udp_check_send_backpressure() {
    // Plain loopback never fills a UDP send buffer; the conformance crate's
    // tests/backpressure.rs runs this guest on a rate-limited loopback in a
    // private network namespace. Here: it must not mistake loopback for a
    // full buffer, so it times out looking for backpressure, cleanly.
    let outcome = run("udp_check_send_backpressure", test_udp_ctx().build());
    assert!(
        outcome.stderr.contains("no backpressure after"),
        "{outcome:?}"
    );
}

#[test]
fn udp_new_socket_limit() {
    let outcome = run(
        "udp_new_socket_limit",
        test_udp_ctx().max_sockets(8).build(),
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(
        outcome.stdout.contains("limit reached at 8 sockets"),
        "{outcome:?}"
    );
}

/// Guests that import other 0.2.x versions must land on this provider, not
/// on wasmtime-wasi's UDP: the provider's counters prove it.
fn lands_on_this_provider(name: &str, imported_version: &str) {
    assert_eq!(
        common::udp_import_versions(name),
        [imported_version],
        "{name} imports"
    );
    let outcome = expect_pass(name);
    assert!(
        outcome.stats.sockets_created >= 1,
        "{name}: {:?}",
        outcome.stats
    );
    assert!(
        outcome.stats.datagrams_received >= 1,
        "{name}: {:?}",
        outcome.stats
    );
}

#[test]
fn udp_import_v0_2_0() {
    lands_on_this_provider("udp_import_v0_2_0", "0.2.0");
}

#[test]
fn udp_import_v0_2_1() {
    lands_on_this_provider("udp_import_v0_2_1", "0.2.1");
}

#[test]
fn udp_import_v0_2_12() {
    lands_on_this_provider("udp_import_v0_2_12", "0.2.12");
}

#[test]
fn udp_std_net() {
    // Rust std's own WASI bindings, not the 0.2.1 this crate implements.
    lands_on_this_provider("udp_std_net", "0.2.6");
}

#[test]
fn cli_args_env_exit() {
    // Exercised with arguments by the CLI's tests; here it runs without.
    let outcome = expect_pass("cli_args_env_exit");
    assert!(outcome.stdout.contains("args:"), "{outcome:?}");
}

#[test]
fn diff_random_ops() {
    // The differential guest never breaks the WIT's contract, so on this
    // provider every seed runs to its end.
    for seed in 1..=20 {
        let outcome = common::run_with_args(
            "diff_random_ops",
            test_udp_ctx().build(),
            &[&seed.to_string(), "60"],
        );
        assert_eq!(outcome.exit, Ok(0), "seed {seed}: {outcome:?}");
        assert!(
            outcome.stdout.ends_with("end\n"),
            "seed {seed}: {outcome:?}"
        );
    }
}

#[test]
fn limit_datagram_size() {
    // A helper outside the store answers the guest's hello with a datagram
    // over the limit, then a small one.
    let helper = std::net::UdpSocket::bind("127.0.0.1:0").expect("helper");
    helper
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let helper_port = helper.local_addr().expect("addr").port().to_string();
    let answer = std::thread::spawn(move || {
        let mut buffer = [0; 64];
        let (_, guest) = helper.recv_from(&mut buffer).expect("hello from the guest");
        helper.send_to(&[9; 2000], guest).expect("oversized");
        helper.send_to(b"small", guest).expect("small");
    });
    let outcome = run_with_args(
        "limit_datagram_size",
        test_udp_ctx().max_datagram_size(1000).build(),
        &["1000", &helper_port],
    );
    answer.join().expect("helper");
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert_eq!(outcome.stats.dropped_oversized, 1, "{outcome:?}");
}

/// Runs `limit_send_rate` under `rate` and returns (zero permits, elapsed).
fn send_under_rate(rate: wasi_udp_host::SendRate, count: u64, size: u64) -> (u64, f64) {
    let outcome = run_with_args(
        "limit_send_rate",
        test_udp_ctx().send_rate(rate).build(),
        &[&count.to_string(), &size.to_string()],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    let fields: Vec<&str> = outcome.stdout.split_whitespace().collect();
    let zero_permits = fields[3].parse().expect("zero_permits");
    let elapsed_ns: f64 = fields[5].parse().expect("elapsed_ns");
    (zero_permits, elapsed_ns / 1e9)
}

#[test]
fn limit_send_rate() {
    // 200 datagrams/s with a burst of 20: 100 datagrams take at least
    // (100 - 20) / 200 s. A lower bound only, so a slow machine cannot fail
    // it; the guest checks that the pollable woke each time.
    let (zero_permits, elapsed) =
        send_under_rate(wasi_udp_host::SendRate::datagrams(200), 100, 100);
    assert!(zero_permits >= 1, "check-send never returned 0");
    assert!(
        elapsed >= 0.95 * 80.0 / 200.0,
        "100 datagrams in {elapsed} s"
    );

    // 200 000 bytes/s of 10 000-byte datagrams (10 028 with headers), a
    // burst of 20 000 bytes that the last datagram may overdraw: 16
    // datagrams take at least (16 * 10 028 - 20 000 - 10 028) / 200 000 s.
    let (zero_permits, elapsed) =
        send_under_rate(wasi_udp_host::SendRate::bytes(200_000), 16, 10_000);
    assert!(zero_permits >= 1, "check-send never returned 0");
    assert!(
        elapsed >= 0.95 * (16.0 * 10_028.0 - 20_000.0 - 10_028.0) / 200_000.0,
        "16 datagrams in {elapsed} s"
    );
}

#[test]
fn a_byte_rate_bounds_empty_datagrams_by_their_headers() {
    // 1000 bytes/s: an empty datagram's packet costs 28 bytes, so 60 of
    // them take at least (60 * 28 - 100 - 28) / 1000 s, not no time at all.
    let (zero_permits, elapsed) = send_under_rate(wasi_udp_host::SendRate::bytes(1000), 60, 0);
    assert!(zero_permits >= 1, "check-send never returned 0");
    assert!(
        elapsed >= 0.95 * (60.0 * 28.0 - 100.0 - 28.0) / 1000.0,
        "60 empty datagrams in {elapsed} s"
    );
}

#[test]
fn limit_socket_buffers() {
    let budget = 2 << 20;
    let outcome = run_with_args(
        "limit_socket_buffers",
        test_udp_ctx()
            .max_sockets(8)
            .max_socket_buffer(64 * 1024)
            .max_store_buffers(budget)
            .build(),
        &[&budget.to_string()],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(outcome.stats.socket_limit_hits >= 1, "{outcome:?}");
    assert!(outcome.stats.buffer_requests_capped >= 2, "{outcome:?}");
}

#[test]
fn hostile_flood() {
    let outcome = run_with_args("hostile_flood", test_udp_ctx().build(), &["200"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(outcome.stats.datagrams_sent > 0, "{outcome:?}");
}

#[test]
fn hostile_socket_churn() {
    let outcome = run_with_args(
        "hostile_socket_churn",
        test_udp_ctx().max_sockets(64).build(),
        &["2000"],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(
        outcome.stdout.contains("cycles 2000 then 64 sockets held"),
        "{outcome:?}"
    );
}

#[test]
fn hostile_stale_handles() {
    for kind in ["dropped", "foreign", "made-up"] {
        let outcome = run_with_args("hostile_stale_handles", test_udp_ctx().build(), &[kind]);
        assert!(outcome.stdout.contains("calling"), "{kind}: {outcome:?}");
        match &outcome.exit {
            Err(trap) => assert!(
                trap.contains("handle") || trap.contains("resource"),
                "{kind}: {trap}"
            ),
            Ok(_) => panic!("{kind}: a forged handle was accepted: {outcome:?}"),
        }
    }
}

#[test]
fn hostile_trap_mid_operation() {
    let outcome = run("hostile_trap_mid_operation", test_udp_ctx().build());
    assert!(outcome.stdout.contains("trapping"), "{outcome:?}");
    assert!(outcome.exit.is_err(), "{outcome:?}");
}

use wasi_udp_host::UdpPolicy as _;

/// A policy that consults a "service" (a task answering over a channel)
/// for binds and connects, and answers sends and receives from what it
/// holds: the guest's calls wait for the service, and the decisions are the
/// same as the synchronous rules'.
struct ServicePolicy {
    rules: wasi_udp_host::RuleSet,
    service: tokio::sync::mpsc::UnboundedSender<(
        wasi_udp_host::SocketUse,
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<bool>,
    )>,
    consulted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl wasi_udp_host::UdpPolicy for ServicePolicy {
    fn check(
        &self,
        socket_use: wasi_udp_host::SocketUse,
        addr: std::net::SocketAddr,
    ) -> Result<(), wasi_udp_host::Denial> {
        self.rules.check(socket_use, addr)
    }

    fn check_async(
        &self,
        socket_use: wasi_udp_host::SocketUse,
        addr: std::net::SocketAddr,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), wasi_udp_host::Denial>> + Send + '_>,
    > {
        Box::pin(async move {
            self.consulted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (answer, answered) = tokio::sync::oneshot::channel();
            let denial = || wasi_udp_host::Denial::not_granted("the service said no");
            self.service
                .send((socket_use, addr, answer))
                .map_err(|_| denial())?;
            match answered.await {
                Ok(true) => Ok(()),
                _ => Err(denial()),
            }
        })
    }
}

#[test]
fn an_async_policy_is_awaited_for_binds_and_connects() {
    for guest in [
        "udp_send_receive",
        "udp_connected_exchange",
        "udp_access_denied",
    ] {
        type Request = (
            wasi_udp_host::SocketUse,
            std::net::SocketAddr,
            tokio::sync::oneshot::Sender<bool>,
        );
        let (service, mut requests) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let consulted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rules = wasi_udp_host::RuleSet::loopback();
        let answers = rules.clone();
        // The service runs on its own thread and takes a moment per answer.
        let service_thread = std::thread::spawn(move || {
            while let Some((socket_use, addr, answer)) = requests.blocking_recv() {
                std::thread::sleep(std::time::Duration::from_millis(2));
                let _ = answer.send(answers.check(socket_use, addr).is_ok());
            }
        });
        let policy = ServicePolicy {
            rules,
            service,
            consulted: consulted.clone(),
        };
        let outcome = run(
            guest,
            wasi_udp_host::UdpCtx::builder().policy(policy).build(),
        );
        service_thread.join().expect("service");
        assert_eq!(outcome.exit, Ok(0), "{guest}: {outcome:?}");
        assert!(
            consulted.load(std::sync::atomic::Ordering::Relaxed) >= 2,
            "{guest}: the service was not consulted"
        );
    }
}

/// The guest itself, small; `tests/hostile.rs` runs it at the limits.
#[test]
fn hostile_hold_sockets() {
    let report = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    report
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let report_addr = report.local_addr().expect("addr").to_string();
    let guest = std::thread::spawn(move || {
        run_with_args(
            "hostile_hold_sockets",
            test_udp_ctx().max_sockets(4).build(),
            &["100", "30", &report_addr],
        )
    });
    let mut buffer = [0; 1024];
    let (len, _) = report.recv_from(&mut buffer).expect("the report");
    let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
    // The control socket is one of the four.
    assert!(text.starts_with("holding 3 control "), "{text}");
    let control: u16 = text
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .expect("port");
    report
        .send_to(b"stop", ("127.0.0.1", control))
        .expect("stop");
    let outcome = guest.join().expect("guest thread");
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(outcome.stdout.contains("told to stop"), "{outcome:?}");
}

/// The legal form of the raw-ABI send; `tests/hostile.rs` runs the rest.
#[test]
fn hostile_send_many_records() {
    let outcome = run_with_args("hostile_send_many_records", test_udp_ctx().build(), &["1"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(outcome.stdout.contains("sent 1"), "{outcome:?}");
}

#[test]
fn limit_kernel_drops() {
    for mode in ["batch", "single"] {
        let outcome = run_with_args("limit_kernel_drops", test_udp_ctx().build(), &[mode]);
        assert_eq!(outcome.exit, Ok(0), "{mode}: {outcome:?}");
        let received: u64 = outcome
            .stdout
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("received count");
        // Every datagram not received was dropped by the kernel, and
        // counted.
        assert_eq!(
            outcome.stats.dropped_kernel_queue,
            201 - received,
            "{mode}: {outcome:?}"
        );
    }
}

/// The CLI's probe; `crates/cli/tests` runs its other modes.
#[test]
fn cli_probe() {
    let outcome = run_with_args(
        "cli_probe",
        test_udp_ctx().build(),
        &["resolve", "localhost", "10.1.2.3", "example.invalid"],
    );
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(
        outcome.stdout.contains("localhost: 127.0.0.1 ::1"),
        "{outcome:?}"
    );
    assert!(outcome.stdout.contains("10.1.2.3: 10.1.2.3"), "{outcome:?}");
    assert!(
        outcome.stdout.contains("example.invalid: error"),
        "{outcome:?}"
    );
    assert_eq!(outcome.stats.denied, 1, "{outcome:?}");
    let outcome = run_with_args("cli_probe", test_udp_ctx().build(), &["localhost"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
}

/// On the kernel's loopback nothing is lost; `crates/cli/tests` runs it on
/// the simulated network.
#[test]
fn sim_traffic() {
    let outcome = run_with_args("sim_traffic", test_udp_ctx().build(), &["50"]);
    assert_eq!(outcome.exit, Ok(0), "{outcome:?}");
    assert!(
        outcome.stdout.starts_with("sent 50 received 50\n"),
        "{outcome:?}"
    );
}

/// A store on `network` as the node `address`, granted `rules`.
fn sim_ctx(
    network: &wasi_udp_host::SimNetwork,
    address: &str,
    rules: &[&str],
) -> wasi_udp_host::UdpCtx {
    let v6 = address.replace("10.0.0.", "fd00::");
    let node = network.node([
        address.parse().expect("address"),
        v6.parse().expect("IPv6 address"),
    ]);
    let mut builder = wasi_udp_host::UdpCtx::builder();
    builder.network(std::sync::Arc::new(node));
    for rule in rules {
        builder.allow(rule.parse().expect("rule"));
    }
    builder.build()
}

/// On the simulated network: the kernel's own is tested in a network
/// namespace by `crates/cli/tests/extensions.rs`, since a broadcast on the
/// machine's network would leave it.
#[test]
fn ext_broadcast_shared_port() {
    let network = wasi_udp_host::SimNetwork::new(7);
    let udp = sim_ctx(
        &network,
        "10.0.0.2",
        &[
            "share,bind:0.0.0.0:47000",
            "bind:0.0.0.0:0",
            "broadcast,send:255.255.255.255:47000",
            "receive:10.0.0.2",
        ],
    );
    let outcome = run("ext_broadcast_shared_port", udp);
    assert_eq!(outcome.exit, Ok(0), "{}", outcome.describe());
    assert!(
        outcome.stdout.contains("3 listeners"),
        "{}",
        outcome.describe()
    );
    // The send before broadcast was enabled is the kernel's refusal, not
    // the policy's.
    assert_eq!(outcome.stats.denied, 0, "{}", outcome.describe());
}

/// On the simulated network, for the same reason.
#[test]
fn ext_options_and_refusals() {
    let network = wasi_udp_host::SimNetwork::new(7);
    let udp = sim_ctx(
        &network,
        "10.0.0.2",
        &[
            "join:239.255.0.0/16",
            "send:224.0.0.251:5353",
            "send:255.255.255.255:9",
            "bind:0.0.0.0:0",
            "bind:127.0.0.1",
            "join:[ff12::/16]",
            "send:[ff12::1:3]:47002",
            "bind:[::]",
            "receive:[fd00::2]",
        ],
    );
    let outcome = run("ext_options_and_refusals", udp);
    assert_eq!(outcome.exit, Ok(0), "{}", outcome.describe());
    // Join 224.0.0.251, send to it without join, broadcast without
    // broadcast, a shared bind without share.
    assert_eq!(outcome.stats.denied, 4, "{}", outcome.describe());
}

/// Two guests find each other by multicast query and response, each on a
/// node of its own.
#[test]
fn two_guests_find_each_other_by_multicast_on_the_simulated_network() {
    let network = wasi_udp_host::SimNetwork::new(11);
    let responder = sim_ctx(
        &network,
        "10.0.0.1",
        &[
            "share,bind:0.0.0.0:5353",
            "join:224.0.0.251",
            "send:224.0.0.251:5353",
            "receive,send:10.0.0.0/24",
        ],
    );
    let resolver = sim_ctx(
        &network,
        "10.0.0.2",
        &[
            "bind:0.0.0.0:0",
            "join:224.0.0.251",
            "send:224.0.0.251:5353",
            "receive:10.0.0.0/24",
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (responded, resolved) = runtime.block_on(async {
        tokio::join!(
            common::run_path_async(
                guest_artifacts::EXAMPLE_MDNS,
                responder,
                &["respond", "printer.local", "10.0.0.50", "3"],
            ),
            common::run_path_async(
                guest_artifacts::EXAMPLE_MDNS,
                resolver,
                &["resolve", "printer.local", "3"],
            ),
        )
    });
    assert_eq!(resolved.exit, Ok(0), "{}", resolved.describe());
    assert!(
        resolved
            .stdout
            .contains("printer.local. A 10.0.0.50 (from 10.0.0.1:5353)"),
        "{}",
        resolved.describe()
    );
    assert_eq!(responded.exit, Ok(0), "{}", responded.describe());
    assert!(
        responded.stdout.contains("answered 10.0.0.2:"),
        "{}",
        responded.describe()
    );
}

/// A host that links only the 0.2.1 interfaces (this crate's without
/// `add_extensions_to_linker`, or wasmtime-wasi's) cannot instantiate a
/// guest that imports the extensions, and says which import is missing.
#[test]
fn a_host_without_the_extensions_cannot_instantiate_a_guest_that_imports_them() {
    use wasmtime::component::{Component, Linker};
    let component = Component::from_file(
        common::engine(),
        common::guest_path("ext_options_and_refusals"),
    )
    .expect("load guest");
    let mut ours = Linker::<wasi_udp_host::WasiUdpState>::new(common::engine());
    wasi_udp_host::add_command_to_linker_async(&mut ours).expect("link");
    let mut wasmtime_wasi_only = Linker::<wasi_udp_host::WasiUdpState>::new(common::engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut wasmtime_wasi_only).expect("link");
    for linker in [ours, wasmtime_wasi_only] {
        let Err(error) = linker.instantiate_pre(&component) else {
            panic!("the extensions are missing, yet the guest instantiated");
        };
        assert!(
            format!("{error:#}").contains(wasi_udp_host::EXTENSIONS_INTERFACE),
            "{error:#}"
        );
        let explained = wasi_udp_host::explain_missing_extensions(&error).expect("explained");
        assert!(
            explained.contains("add_extensions_to_linker"),
            "{explained}"
        );
    }
    // A guest that does not import them instantiates on either.
    let plain = Component::from_file(common::engine(), common::guest_path("udp_send_receive"))
        .expect("load guest");
    let mut ours = Linker::<wasi_udp_host::WasiUdpState>::new(common::engine());
    wasi_udp_host::add_command_to_linker_async(&mut ours).expect("link");
    ours.instantiate_pre(&plain).expect("no extensions needed");
}
