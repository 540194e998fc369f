//! `wasi:sockets/ip-name-lookup`: which names resolve, and how.
//!
//! By default nothing leaves the machine: IP address strings, `localhost`
//! and the names in the hosts file resolve; other names are refused with
//! `access-denied` and a warning that says how to grant the system
//! resolver. What a lookup returns is only an address: using it is still up
//! to the UDP policy.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasmtime_wasi_io::poll::Pollable;

use crate::error::Code;

/// Which names a store's guests may resolve.
///
/// ```
/// use wasi_udp_host::NameLookup;
/// // localhost and /etc/hosts (the default), then DNS through the system.
/// let lookup = NameLookup::local().system_resolver(true);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameLookup {
    hosts_file: Option<PathBuf>,
    system: bool,
}

impl Default for NameLookup {
    fn default() -> Self {
        Self::local()
    }
}

/// The hosts file read unless another is named.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

impl NameLookup {
    /// IP address strings, `localhost` (and names under `.localhost`) and
    /// the names in `/etc/hosts`: nothing leaves the machine. The default.
    pub fn local() -> Self {
        Self {
            hosts_file: Some(PathBuf::from(DEFAULT_HOSTS_FILE)),
            system: false,
        }
    }

    /// IP address strings and `localhost` only.
    pub fn literals_and_localhost() -> Self {
        Self {
            hosts_file: None,
            system: false,
        }
    }

    /// The same, reading names from `path` instead of `/etc/hosts`.
    pub fn hosts_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.hosts_file = Some(path.into());
        self
    }

    /// The same, and (when `allowed`) any other name through the system's
    /// resolver (`getaddrinfo`), which may ask the network's DNS servers.
    pub fn system_resolver(mut self, allowed: bool) -> Self {
        self.system = allowed;
        self
    }

    /// The hosts file read, if any.
    pub fn hosts_file_path(&self) -> Option<&Path> {
        self.hosts_file.as_deref()
    }

    /// Whether names found nowhere else go to the system resolver.
    pub fn uses_system_resolver(&self) -> bool {
        self.system
    }

    /// Starts resolving `name`: at once from what is local, or in the
    /// background through the system resolver. `Err` is the error the
    /// guest gets now: `invalid-argument` for a malformed name,
    /// `access-denied` for a name only the system resolver could answer
    /// when it is not granted.
    pub(crate) fn resolve(&self, name: &str) -> Result<ResolveAddressStream, Code> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(ResolveAddressStream::ready(vec![unmapped(ip)]));
        }
        validate_name(name)?;
        let lower = name.to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            // IPv4 first: more servers listen there than on ::1.
            return Ok(ResolveAddressStream::ready(vec![
                Ipv4Addr::LOCALHOST.into(),
                Ipv6Addr::LOCALHOST.into(),
            ]));
        }
        if let Some(path) = &self.hosts_file {
            let found = hosts_file_addresses(path, &lower);
            if !found.is_empty() {
                return Ok(ResolveAddressStream::ready(found));
            }
        }
        if !self.system {
            return Err(Code::AccessDenied);
        }
        Ok(ResolveAddressStream::system(lower))
    }
}

/// WIT: "invalid-argument: name is a syntactically invalid domain name or
/// IP address". Letters, digits, `-` and `_` in labels of 1 to 63
/// characters, 253 in all. (Unicode names would need IDNA, which is not
/// done here: they are refused as invalid.)
fn validate_name(name: &str) -> Result<(), Code> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(Code::InvalidArgument)
    }
}

/// WIT: "This function never returns IPv4-mapped IPv6 addresses."
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses `name` (lowercase) has in the hosts file at `path`, in
/// the file's order; none when the file cannot be read.
fn hosts_file_addresses(path: &Path, name: &str) -> Vec<IpAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if fields.any(|alias| alias.eq_ignore_ascii_case(name)) {
            let ip = unmapped(ip);
            if !found.contains(&ip) {
                found.push(ip);
            }
        }
    }
    found
}

type Lookup = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, Code>> + Send>>;

/// The host side of a `resolve-address-stream`: addresses ready to hand
/// out, or a system lookup under way.
pub struct ResolveAddressStream {
    state: State,
}

enum State {
    Ready(VecDeque<IpAddr>),
    Pending(Lookup),
    Failed(Code),
}

impl std::fmt::Debug for ResolveAddressStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Ready(addresses) => format!("{} addresses", addresses.len()),
            State::Pending(_) => "resolving".into(),
            State::Failed(code) => format!("failed: {code:?}"),
        };
        f.debug_struct("ResolveAddressStream")
            .field("state", &state)
            .finish()
    }
}

impl ResolveAddressStream {
    fn ready(addresses: Vec<IpAddr>) -> Self {
        Self {
            state: State::Ready(addresses.into()),
        }
    }

    fn system(name: String) -> Self {
        let lookup = async move {
            let blocking = move || -> Result<Vec<IpAddr>, Code> {
                let addresses = (name.as_str(), 0)
                    .to_socket_addrs()
                    .map_err(|error| resolver_error(&error))?;
                let mut found: Vec<IpAddr> = Vec::new();
                for address in addresses {
                    let ip = unmapped(address.ip());
                    if !found.contains(&ip) {
                        found.push(ip);
                    }
                }
                if found.is_empty() {
                    return Err(Code::NameUnresolvable);
                }
                Ok(found)
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => runtime
                    .spawn_blocking(blocking)
                    .await
                    .unwrap_or(Err(Code::PermanentResolverFailure)),
                Err(_) => blocking(),
            }
        };
        Self {
            state: State::Pending(Box::pin(lookup)),
        }
    }

    /// `resolve-next-address`.
    pub(crate) fn next_address(&mut self) -> Result<Option<IpAddr>, Code> {
        if let State::Pending(lookup) = &mut self.state {
            let mut context = Context::from_waker(Waker::noop());
            match lookup.as_mut().poll(&mut context) {
                // WIT: "would-block: A result is not available yet."
                Poll::Pending => return Err(Code::WouldBlock),
                Poll::Ready(Ok(addresses)) => self.state = State::Ready(addresses.into()),
                Poll::Ready(Err(code)) => self.state = State::Failed(code),
            }
        }
        match &mut self.state {
            State::Ready(addresses) => Ok(addresses.pop_front()),
            State::Failed(code) => Err(*code),
            State::Pending(_) => Err(Code::WouldBlock),
        }
    }
}

/// What a failed `getaddrinfo` means, as far as std says.
fn resolver_error(error: &std::io::Error) -> Code {
    let text = error.to_string().to_ascii_lowercase();
    if text.contains("temporary") || text.contains("try again") {
        Code::TemporaryResolverFailure
    } else if text.contains("not known") || text.contains("no address") || text.contains("no data")
    {
        Code::NameUnresolvable
    } else {
        Code::PermanentResolverFailure
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {
        if let State::Pending(lookup) = &mut self.state {
            let result = lookup.as_mut().await;
            self.state = match result {
                Ok(addresses) => State::Ready(addresses.into()),
                Err(code) => State::Failed(code),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(stream: &mut ResolveAddressStream) -> Vec<IpAddr> {
        std::iter::from_fn(|| stream.next_address().expect("ready")).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn literals_and_localhost_resolve_without_anything_else() {
        let lookup = NameLookup::literals_and_localhost();
        let mut stream = lookup.resolve("localhost").expect("localhost");
        assert_eq!(all(&mut stream), [ip("127.0.0.1"), ip("::1")]);
        let mut stream = lookup
            .resolve("printer.localhost.")
            .expect("under .localhost");
        assert_eq!(all(&mut stream).len(), 2);
        let mut stream = lookup.resolve("10.0.0.53").expect("a literal");
        assert_eq!(all(&mut stream), [ip("10.0.0.53")]);
        let mut stream = lookup.resolve("::ffff:10.0.0.53").expect("mapped");
        assert_eq!(all(&mut stream), [ip("10.0.0.53")], "never IPv4-mapped");
        assert_eq!(
            lookup.resolve("example.com").err(),
            Some(Code::AccessDenied)
        );
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a b",
            &"x".repeat(64),
            "ex\u{e4}mple.com",
        ] {
            assert_eq!(
                lookup.resolve(bad).err(),
                Some(Code::InvalidArgument),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_come_from_the_hosts_file_in_its_order() {
        let dir = std::env::temp_dir().join(format!("wasi-udp-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("hosts");
        std::fs::write(
            &path,
            "# comment\n10.53.0.20 printer.lan printer # trailing\nfd53::20 printer.lan\n\
             not-an-ip other.lan\n10.53.0.21\tscanner.lan\n",
        )
        .expect("write");
        let lookup = NameLookup::local().hosts_file(&path);
        let mut stream = lookup.resolve("Printer.LAN").expect("found");
        assert_eq!(all(&mut stream), [ip("10.53.0.20"), ip("fd53::20")]);
        let mut stream = lookup.resolve("printer").expect("an alias");
        assert_eq!(all(&mut stream), [ip("10.53.0.20")]);
        let mut stream = lookup.resolve("scanner.lan").expect("tab-separated");
        assert_eq!(all(&mut stream), [ip("10.53.0.21")]);
        assert_eq!(lookup.resolve("other.lan").err(), Some(Code::AccessDenied));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
