//! The embedder's configuration: one `[[guest]]` table per tenant.
//!
//! ```toml
//! [[guest]]
//! name = "dns"
//! component = "dns_lookup.wasm"
//! args = ["10.53.0.53", "printer.lan"]
//! base = "none"                                 # or "loopback" (the default)
//! allow = ["bind:0.0.0.0:0", "send,connect:10.53.0.53:53"]
//! deny = []
//! max-sockets = 4
//! send-rate = 100                               # datagrams per second
//! max-store-buffers = 1048576                   # bytes of kernel buffers
//! ```

use std::path::{Path, PathBuf};

use wasi_udp_host::{Rule, RuleSet, SendRate, UdpCtx};

/// One tenant.
#[derive(Debug)]
pub struct GuestConfig {
    /// Shown in logs and in the counters table.
    pub name: String,
    /// The component, relative to the configuration file.
    pub component: PathBuf,
    /// The guest's arguments.
    pub args: Vec<String>,
    /// Its rules.
    pub rules: RuleSet,
    /// Its limits, set on the builder.
    pub max_sockets: Option<usize>,
    pub send_rate: Option<u64>,
    pub max_store_buffers: Option<usize>,
}

impl GuestConfig {
    /// The tenant's UDP context.
    pub fn udp_ctx(&self) -> UdpCtx {
        let mut builder = UdpCtx::builder();
        builder.rules(&self.rules);
        if let Some(max) = self.max_sockets {
            builder.max_sockets(max);
        }
        if let Some(rate) = self.send_rate {
            builder.send_rate(SendRate::datagrams(rate));
        }
        if let Some(bytes) = self.max_store_buffers {
            builder.max_store_buffers(bytes);
        }
        builder.build()
    }
}

/// Reads the tenants from `path`.
///
/// # Errors
/// If the file cannot be read, or a table or rule is malformed (the
/// message names the tenant and the key).
pub fn read(path: &Path) -> Result<Vec<GuestConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, base_dir).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str, base_dir: &Path) -> Result<Vec<GuestConfig>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let guests = table
        .get("guest")
        .and_then(toml::Value::as_array)
        .ok_or("expected [[guest]] tables")?;
    guests
        .iter()
        .enumerate()
        .map(|(index, guest)| {
            let guest = guest
                .as_table()
                .ok_or_else(|| format!("guest {index} is not a table"))?;
            guest_config(guest, base_dir).map_err(|e| format!("guest {index}: {e}"))
        })
        .collect()
}

fn guest_config(guest: &toml::Table, base_dir: &Path) -> Result<GuestConfig, String> {
    let string = |key: &str| guest.get(key).and_then(toml::Value::as_str);
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match guest.get(key) {
            None => Ok(Vec::new()),
            Some(value) => value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .ok_or_else(|| format!("`{key}` must be a list of strings")),
        }
    };
    let number = |key: &str| -> Result<Option<u64>, String> {
        match guest.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a positive integer")),
        }
    };
    let name = string("name").ok_or("`name` is missing")?.to_owned();
    let component = base_dir.join(string("component").ok_or("`component` is missing")?);
    let mut rules = match string("base").unwrap_or("loopback") {
        "loopback" => RuleSet::loopback(),
        "none" => RuleSet::new(),
        other => {
            return Err(format!(
                "base = \"{other}\": expected \"loopback\" or \"none\""
            ));
        }
    };
    for text in strings("allow")? {
        rules.allow(
            text.parse::<Rule>()
                .map_err(|e| format!("allow `{text}`: {e}"))?,
        );
    }
    for text in strings("deny")? {
        rules.deny(
            text.parse::<Rule>()
                .map_err(|e| format!("deny `{text}`: {e}"))?,
        );
    }
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(GuestConfig {
        name,
        component,
        args: strings("args")?,
        rules,
        max_sockets: number("max-sockets")?.map(size),
        send_rate: number("send-rate")?,
        max_store_buffers: number("max-store-buffers")?.map(size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_parse_with_their_rules_and_limits() {
        let guests = parse(
            r#"
            [[guest]]
            name = "dns"
            component = "dns_lookup.wasm"
            args = ["10.53.0.53", "printer.lan"]
            base = "none"
            allow = ["bind:0.0.0.0:0", "send,connect:10.53.0.53:53"]
            max-sockets = 4
            send-rate = 100

            [[guest]]
            name = "echo"
            component = "/abs/echo.wasm"
            "#,
            Path::new("/etc/tenants"),
        )
        .expect("parses");
        assert_eq!(guests.len(), 2);
        assert_eq!(
            guests[0].component,
            Path::new("/etc/tenants/dns_lookup.wasm")
        );
        assert_eq!(guests[0].rules.allow_rules().len(), 2);
        assert_eq!(guests[0].max_sockets, Some(4));
        assert_eq!(guests[1].component, Path::new("/abs/echo.wasm"));
        assert!(!guests[1].rules.allow_rules().is_empty(), "loopback base");
        let ctx = guests[0].udp_ctx();
        assert_eq!(ctx.limits().max_sockets, 4);
    }

    #[test]
    fn mistakes_name_the_tenant_and_the_key() {
        for (text, expected) in [
            ("x = 1", "expected [[guest]]"),
            (
                "[[guest]]\ncomponent = \"a.wasm\"",
                "guest 0: `name` is missing",
            ),
            (
                "[[guest]]\nname = \"a\"\ncomponent = \"a.wasm\"\nallow = [\"sned:1.2.3.4\"]",
                "unknown use `sned`",
            ),
            (
                "[[guest]]\nname = \"a\"\ncomponent = \"a.wasm\"\nmax-sockets = 0",
                "`max-sockets` must be a positive integer",
            ),
        ] {
            let error = parse(text, Path::new(".")).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
