//! A guest in another language: the Python script in `examples/python`,
//! built with componentize-py, exchanging datagrams through `wasi-udp`
//! with nothing but the standard `socket` module.

mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netns::{describe, skip, wasi_udp};

/// Builds `examples/python/app.py` into a component, or skips when
/// componentize-py is not installed.
fn build() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let source = root.join("examples/python");
    let output = root.join("target/python");
    std::fs::create_dir_all(&output).expect("output folder");
    let component = output.join("app.wasm");
    let built = Command::new("componentize-py")
        .arg("-d")
        .arg(source.join("wit"))
        .args(["-w", "wasi:cli/command@0.2.1", "componentize", "app", "-p"])
        .arg(&source)
        .arg("-o")
        .arg(&component)
        .output();
    match built {
        Err(error) => {
            skip(&format!(
                "componentize-py is not installed ({error}; pip install componentize-py)"
            ));
            None
        }
        Ok(output) => {
            assert!(
                output.status.success(),
                "componentize-py failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Some(component)
        }
    }
}

#[test]
fn a_python_guest_exchanges_datagrams_with_the_standard_socket_module() {
    let Some(component) = build() else {
        return;
    };
    let component = component.to_str().expect("utf-8 path");
    // The first run compiles 18 MiB of CPython; allow for it.
    let output = wasi_udp(&[component], Duration::from_secs(240));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("b received b'hello from python' from ('127.0.0.1', "),
        "{stdout}"
    );
    assert!(
        stdout.contains("a received b'echo: hello from python' from ('127.0.0.1', "),
        "{stdout}"
    );
    assert!(stdout.contains("localhost is 127.0.0.1"), "{stdout}");

    // The sockets are this provider's: its policy refuses them.
    let output = wasi_udp(&["--deny-all", component], Duration::from_secs(240));
    assert_ne!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("denied: bind 127.0.0.1:0"), "{stderr}");
    assert!(stderr.contains("PermissionError"), "{stderr}");
}
