//! The README's limits table says what `Limits::default()` is, row by row,
//! and names every limit there is.

use std::path::Path;

use wasi_udp_host::Limits;

/// The README's limits table: (builder method, default column).
fn readme_limits() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("read README.md");
    let table = readme
        .split("### Limits")
        .nth(1)
        .expect("a Limits section")
        .split("\n\n")
        .find(|block| block.starts_with("| limit |"))
        .expect("a limits table");
    table
        .lines()
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let builder = cells[2]
                .split('/')
                .next()
                .expect("builder column")
                .trim()
                .trim_matches('`')
                .to_owned();
            (builder, cells[3].to_owned())
        })
        .collect()
}

#[test]
fn the_readme_limits_table_matches_the_defaults() {
    let defaults = Limits::default();
    let expected: Vec<(&str, String)> = vec![
        ("max_sockets", defaults.max_sockets.to_string()),
        ("max_send_batch", defaults.max_send_batch.to_string()),
        ("max_receive_batch", defaults.max_receive_batch.to_string()),
        ("max_datagram_size", defaults.max_datagram_size.to_string()),
        ("max_socket_buffer", defaults.max_socket_buffer.to_string()),
        ("max_store_buffers", defaults.max_store_buffers.to_string()),
        (
            "send_rate",
            if defaults.send_rate.is_limited() {
                format!("{:?}", defaults.send_rate)
            } else {
                "unlimited".into()
            },
        ),
        ("max_reply_peers", defaults.max_reply_peers.to_string()),
    ];
    let rows = readme_limits();
    let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, wanted, "the README's rows, in order");
    for ((name, readme), (_, default)) in rows.iter().zip(&expected) {
        assert_eq!(readme, default, "README default of {name}");
    }
    // Every field of `Limits` has a row: its Debug lists them all.
    let fields = format!("{defaults:?}").matches(": ").count();
    // `send_rate` shows its two fields inside.
    assert_eq!(fields - 2, expected.len(), "{defaults:?}");
}
