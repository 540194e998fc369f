//! The UDP policy and limits a run gets: from the built-in default
//! (loopback), a `--policy FILE`, and `--allow`/`--deny`/limit flags, in
//! that order, later ones adding rules and overriding limits.

use std::path::Path;

use wasi_udp_host::{Hints, Limits, NameLookup, Rule, RuleSet, UdpCtx};

/// What the rules start from, before allow and deny rules are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Loopback and wildcard binds (the default).
    Loopback,
    /// Nothing (`--deny-all`, `base = "none"`).
    Nothing,
    /// Everything the operating system allows (`--inherit-network`,
    /// `base = "all"`).
    Everything,
}

impl Base {
    fn name(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Nothing => "none",
            Self::Everything => "all",
        }
    }

    fn rules(self) -> RuleSet {
        match self {
            Self::Loopback => RuleSet::loopback(),
            Self::Nothing => RuleSet::new(),
            Self::Everything => RuleSet::everything(),
        }
    }
}

/// Limits given on the command line or in a policy file; `None` keeps the
/// value from before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub max_sockets: Option<usize>,
    pub max_send_batch: Option<u64>,
    pub max_receive_batch: Option<usize>,
    pub max_datagram_size: Option<usize>,
    pub max_socket_buffer: Option<usize>,
    pub max_store_buffers: Option<usize>,
    pub send_rate: Option<u64>,
    pub send_bytes_rate: Option<u64>,
    pub max_reply_peers: Option<usize>,
}

impl LimitOverrides {
    /// Sets the limit called `name` to `value`.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        if value == 0 {
            return Err(format!("{name} must be at least 1"));
        }
        match name {
            "max-sockets" => self.max_sockets = Some(size(value)),
            "max-send-batch" => self.max_send_batch = Some(value),
            "max-receive-batch" => self.max_receive_batch = Some(size(value)),
            "max-datagram-size" => self.max_datagram_size = Some(size(value)),
            "max-socket-buffer" => self.max_socket_buffer = Some(size(value)),
            "max-store-buffers" => self.max_store_buffers = Some(size(value)),
            "send-rate" => self.send_rate = Some(value),
            "send-bytes-rate" => self.send_bytes_rate = Some(value),
            "max-reply-peers" => self.max_reply_peers = Some(size(value)),
            other => return Err(format!("unknown limit `{other}`")),
        }
        Ok(())
    }

    /// `self` with what `later` sets taking precedence.
    fn then(self, later: LimitOverrides) -> Self {
        Self {
            max_sockets: later.max_sockets.or(self.max_sockets),
            max_send_batch: later.max_send_batch.or(self.max_send_batch),
            max_receive_batch: later.max_receive_batch.or(self.max_receive_batch),
            max_datagram_size: later.max_datagram_size.or(self.max_datagram_size),
            max_socket_buffer: later.max_socket_buffer.or(self.max_socket_buffer),
            max_store_buffers: later.max_store_buffers.or(self.max_store_buffers),
            send_rate: later.send_rate.or(self.send_rate),
            send_bytes_rate: later.send_bytes_rate.or(self.send_bytes_rate),
            max_reply_peers: later.max_reply_peers.or(self.max_reply_peers),
        }
    }

    fn apply(self, limits: &mut Limits) {
        let set = |value: Option<usize>, target: &mut usize| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(self.max_sockets, &mut limits.max_sockets);
        set(self.max_receive_batch, &mut limits.max_receive_batch);
        set(self.max_datagram_size, &mut limits.max_datagram_size);
        set(self.max_socket_buffer, &mut limits.max_socket_buffer);
        set(self.max_store_buffers, &mut limits.max_store_buffers);
        set(self.max_reply_peers, &mut limits.max_reply_peers);
        if let Some(value) = self.max_send_batch {
            limits.max_send_batch = value;
        }
        if let Some(rate) = self.send_rate {
            limits.send_rate.datagrams_per_second = Some(rate);
        }
        if let Some(rate) = self.send_bytes_rate {
            limits.send_rate.bytes_per_second = Some(rate);
        }
    }
}

/// One source of settings: a policy file or the command line.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub base: Option<Base>,
    pub rules: RuleSet,
    pub limits: LimitOverrides,
    /// Whether the system resolver is granted (`None`: not said).
    pub allow_name_lookup: Option<bool>,
    pub hosts_file: Option<std::path::PathBuf>,
}

impl Layer {
    /// The layer the command line's flags make.
    pub fn from_args(args: &crate::args::Args) -> Result<Self, String> {
        let mut layer = Layer {
            base: if args.deny_all {
                Some(Base::Nothing)
            } else if args.inherit_network {
                Some(Base::Everything)
            } else {
                None
            },
            allow_name_lookup: args.allow_name_lookup.then_some(true),
            hosts_file: args.hosts_file.clone(),
            ..Layer::default()
        };
        for rule in &args.allow {
            layer.rules.allow(rule.clone());
        }
        for rule in &args.deny {
            layer.rules.deny(rule.clone());
        }
        for (name, value) in [
            ("max-sockets", args.max_sockets),
            ("max-send-batch", args.max_send_batch),
            ("max-receive-batch", args.max_receive_batch),
            ("max-datagram-size", args.max_datagram_size),
            ("max-socket-buffer", args.max_socket_buffer),
            ("max-store-buffers", args.max_store_buffers),
            ("send-rate", args.send_rate),
            ("send-bytes-rate", args.send_bytes_rate),
            ("max-reply-peers", args.max_reply_peers),
        ] {
            if let Some(value) = value {
                layer.limits.set(name, value)?;
            }
        }
        Ok(layer)
    }
}

/// Reads a policy file:
///
/// ```toml
/// base = "none"            # "loopback" (default), "none" or "all"
/// allow = ["send,connect:10.0.0.0/8:53", "bind:0.0.0.0:0"]
/// deny = ["10.0.0.5"]
/// allow-name-lookup = true # the system resolver, as --allow-name-lookup
/// hosts-file = "hosts"     # instead of /etc/hosts
///
/// [limits]
/// max-sockets = 16
/// send-rate = 1000
/// ```
pub fn read_policy_file(path: &Path) -> Result<Layer, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse_policy(&text).map_err(|e| format!("{shown}: {e}"))
}

fn parse_policy(text: &str) -> Result<Layer, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut layer = Layer::default();
    for (key, value) in &table {
        match key.as_str() {
            "base" => {
                let name = value.as_str().ok_or("`base` must be a string")?;
                layer.base = Some(match name {
                    "loopback" => Base::Loopback,
                    "none" => Base::Nothing,
                    "all" => Base::Everything,
                    other => {
                        return Err(format!(
                            "base = \"{other}\": expected \"loopback\", \"none\" or \"all\""
                        ));
                    }
                });
            }
            "allow" | "deny" => {
                let rules = value
                    .as_array()
                    .ok_or_else(|| format!("`{key}` must be an array of rule strings"))?;
                for rule in rules {
                    let text = rule
                        .as_str()
                        .ok_or_else(|| format!("`{key}` must be an array of rule strings"))?;
                    let rule: Rule = text.parse().map_err(|e| format!("{key} `{text}`: {e}"))?;
                    if key == "allow" {
                        layer.rules.allow(rule);
                    } else {
                        layer.rules.deny(rule);
                    }
                }
            }
            "limits" => {
                let limits = value.as_table().ok_or("`limits` must be a table")?;
                for (name, value) in limits {
                    let value = value
                        .as_integer()
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| format!("limits.{name} must be a positive integer"))?;
                    layer.limits.set(name, value)?;
                }
            }
            "allow-name-lookup" => {
                layer.allow_name_lookup = Some(
                    value
                        .as_bool()
                        .ok_or("`allow-name-lookup` must be true or false")?,
                );
            }
            "hosts-file" => {
                let path = value.as_str().ok_or("`hosts-file` must be a path")?;
                layer.hosts_file = Some(path.into());
            }
            other => {
                return Err(format!(
                    "unknown key `{other}` (expected base, allow, deny, allow-name-lookup, \
                     hosts-file, limits)"
                ));
            }
        }
    }
    Ok(layer)
}

/// The settings of a run: the policy file's layer, then the command line's.
#[derive(Clone, Debug)]
pub struct Settings {
    pub base: Base,
    /// Every rule: the base's, the file's, the command line's.
    pub rules: RuleSet,
    pub limits: Limits,
    pub name_lookup: NameLookup,
}

impl Settings {
    /// Merges `file` (if any) and then `flags` over the defaults.
    pub fn merge(file: Option<Layer>, flags: Layer) -> Self {
        let file = file.unwrap_or_default();
        let base = flags.base.or(file.base).unwrap_or(Base::Loopback);
        let mut rules = base.rules();
        rules.extend(&file.rules).extend(&flags.rules);
        let mut limits = Limits::default();
        file.limits.then(flags.limits).apply(&mut limits);
        let mut name_lookup = NameLookup::local();
        if let Some(path) = flags.hosts_file.or(file.hosts_file) {
            name_lookup = name_lookup.hosts_file(path);
        }
        let system = flags
            .allow_name_lookup
            .or(file.allow_name_lookup)
            .unwrap_or(false);
        Self {
            base,
            rules,
            limits,
            name_lookup: name_lookup.system_resolver(system),
        }
    }

    /// The effective rules and limits, for `--explain-policy`.
    pub fn explain(&self) -> String {
        let budget = wasi_udp_host::DescriptorBudget::process();
        let hosts = match self.name_lookup.hosts_file_path() {
            Some(path) => format!(", the names in {}", path.display()),
            None => String::new(),
        };
        let system = if self.name_lookup.uses_system_resolver() {
            ", then the system resolver"
        } else {
            " (--allow-name-lookup adds the system resolver)"
        };
        format!(
            "UDP policy (base: {}). A matching deny rule refuses; otherwise a matching allow \
             rule grants; otherwise refused.\n{}\n{}\n\nLimits per run:\n{}\n\nDescriptors: at most \
             {} sockets ({})\nNames: IP addresses, localhost{hosts}{system}",
            self.base.name(),
            indent(&self.rules.explain()),
            self.explain_extensions(),
            indent(&self.limits.explain()),
            budget.capacity(),
            budget.origin(),
        )
    }

    /// Which of the extension uses (multicast groups, broadcast, shared
    /// ports) the rules grant anywhere: no base grants them, so only rules
    /// that name them do.
    fn explain_extensions(&self) -> String {
        use wasi_udp_host::SocketUse;
        let uses = [
            (
                SocketUse::Join,
                "join a multicast group or send to one (with send)",
            ),
            (
                SocketUse::Broadcast,
                "send to a broadcast address (with send)",
            ),
            (SocketUse::Share, "bind a shared port (with bind)"),
        ];
        let mut lines = vec![
            "Multicast, broadcast and shared ports (wasi-udp:extensions), granted only by \
             rules that name them:"
                .to_owned(),
        ];
        for (socket_use, what) in uses {
            let granted: Vec<String> = self
                .rules
                .allow_rules()
                .iter()
                .filter(|rule| rule.uses.contains(&socket_use))
                .map(|rule| rule.spec())
                .collect();
            let granted = if granted.is_empty() {
                format!("none (e.g. --allow {socket_use}:ADDRESS)")
            } else {
                granted.join(", ")
            };
            lines.push(format!("  {:<9} {what}: {granted}", socket_use.name()));
        }
        lines.join("\n")
    }

    /// The UDP context for the guest: the rules, with warnings that name
    /// the flags that would grant a refused operation or raise a limit.
    pub fn udp_ctx(&self, network: std::sync::Arc<dyn wasi_udp_host::Network>) -> UdpCtx {
        UdpCtx::builder()
            .network(network)
            .limits(self.limits)
            .rules(&self.rules)
            .hints(Hints::CliFlags)
            .name_lookup(self.name_lookup.clone())
            .build()
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use wasi_udp_host::{SocketUse, UdpPolicy};

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn a_policy_file_sets_base_rules_and_limits() {
        let layer = parse_policy(
            r#"
            base = "none"
            allow = ["send,connect:10.0.0.0/8:53", "bind:0.0.0.0"]
            deny = ["10.0.0.5"]
            [limits]
            max-sockets = 16
            send-rate = 1000
            "#,
        )
        .expect("parses");
        let settings = Settings::merge(Some(layer), Layer::default());
        assert_eq!(settings.base, Base::Nothing);
        assert_eq!(settings.limits.max_sockets, 16);
        assert_eq!(settings.limits.send_rate.datagrams_per_second, Some(1000));
        let policy = settings.rules.clone();
        assert!(policy.check(SocketUse::Send, addr("10.1.1.1:53")).is_ok());
        assert!(policy.check(SocketUse::Send, addr("10.1.1.1:54")).is_err());
        assert!(policy.check(SocketUse::Send, addr("127.0.0.1:53")).is_err());
        let denial = policy
            .check(SocketUse::Send, addr("10.0.0.5:53"))
            .expect_err("denied");
        assert!(denial.reason().contains("deny all 10.0.0.5/32"), "{denial}");
        assert!(settings.explain().contains("deny  all 10.0.0.5/32"));
    }

    #[test]
    fn flags_override_the_file() {
        let file = parse_policy("base = \"all\"\n[limits]\nmax-sockets = 16").expect("parses");
        let mut flags = Layer {
            base: Some(Base::Loopback),
            ..Layer::default()
        };
        flags.limits.set("max-sockets", 4).expect("limit");
        let settings = Settings::merge(Some(file), flags);
        assert_eq!(settings.base, Base::Loopback);
        assert_eq!(settings.limits.max_sockets, 4);
    }

    #[test]
    fn bad_policy_files_say_what_is_wrong() {
        for (text, expected) in [
            ("base = \"some\"", "expected \"loopback\""),
            ("allow = \"10.0.0.0/8\"", "array of rule strings"),
            ("allow = [\"nonsense\"]", "allow `nonsense`"),
            ("[limits]\nmax-sockets = -1", "positive integer"),
            ("[limits]\nmax-socks = 1", "unknown limit"),
            ("frobnicate = 1", "unknown key"),
            ("base = ", "expected"),
        ] {
            let error = parse_policy(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
