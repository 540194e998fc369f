//! The one error table: OS errors to the WIT's error codes, and the line
//! between a guest-visible error and a trap.
//!
//! The state machine speaks [`UdpError`], this crate's own type; the WIT
//! glue turns it into the bindgen `error-code` (or a trap) at the edge.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use wasmtime::component::ResourceTableError;

use crate::bindings::ErrorCode;

/// The error codes of `wasi:sockets/network`, as the state machine returns
/// them. Converted one to one into the bindgen `ErrorCode` at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Code {
    Unknown,
    AccessDenied,
    NotSupported,
    InvalidArgument,
    OutOfMemory,
    Timeout,
    ConcurrencyConflict,
    NotInProgress,
    WouldBlock,
    InvalidState,
    NewSocketLimit,
    AddressNotBindable,
    AddressInUse,
    RemoteUnreachable,
    ConnectionRefused,
    DatagramTooLarge,
    NameUnresolvable,
    TemporaryResolverFailure,
    PermanentResolverFailure,
}

impl From<Code> for ErrorCode {
    fn from(code: Code) -> Self {
        match code {
            Code::Unknown => Self::Unknown,
            Code::AccessDenied => Self::AccessDenied,
            Code::NotSupported => Self::NotSupported,
            Code::InvalidArgument => Self::InvalidArgument,
            Code::OutOfMemory => Self::OutOfMemory,
            Code::Timeout => Self::Timeout,
            Code::ConcurrencyConflict => Self::ConcurrencyConflict,
            Code::NotInProgress => Self::NotInProgress,
            Code::WouldBlock => Self::WouldBlock,
            Code::InvalidState => Self::InvalidState,
            Code::NewSocketLimit => Self::NewSocketLimit,
            Code::AddressNotBindable => Self::AddressNotBindable,
            Code::AddressInUse => Self::AddressInUse,
            Code::RemoteUnreachable => Self::RemoteUnreachable,
            Code::ConnectionRefused => Self::ConnectionRefused,
            Code::DatagramTooLarge => Self::DatagramTooLarge,
            Code::NameUnresolvable => Self::NameUnresolvable,
            Code::TemporaryResolverFailure => Self::TemporaryResolverFailure,
            Code::PermanentResolverFailure => Self::PermanentResolverFailure,
        }
    }
}

/// What the state machine fails with: an error code the guest receives, or
/// a trap for a guest that broke the interface's contract.
#[derive(Debug)]
pub(crate) enum UdpError {
    Code(Code),
    Trap(String),
}

/// Result of a state machine operation.
pub(crate) type UdpResult<T> = Result<T, UdpError>;

impl UdpError {
    /// A trap with a message, for guests that broke the WIT contract.
    pub(crate) fn trap(message: impl fmt::Display) -> Self {
        Self::Trap(message.to_string())
    }
}

impl From<Code> for UdpError {
    fn from(code: Code) -> Self {
        Self::Code(code)
    }
}

/// What a UDP host function failed with: either an `error-code` the guest
/// receives, or a trap that ends the guest because it broke the interface's
/// contract (or because the host itself failed). The bindgen traits'
/// error type.
pub enum SocketError {
    /// Returned to the guest as `error(code)`.
    Code(ErrorCode),
    /// Ends the guest's call with this trap.
    Trap(wasmtime::Error),
}

/// Result of a UDP host function.
pub type SocketResult<T> = Result<T, SocketError>;

impl SocketError {
    /// The guest-visible code, if this is not a trap.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Code(code) => Some(*code),
            Self::Trap(_) => None,
        }
    }
}

impl fmt::Debug for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "error-code {code:?}"),
            Self::Trap(trap) => write!(f, "trap: {trap:#}"),
        }
    }
}

impl From<ErrorCode> for SocketError {
    fn from(code: ErrorCode) -> Self {
        Self::Code(code)
    }
}

impl From<UdpError> for SocketError {
    fn from(error: UdpError) -> Self {
        match error {
            UdpError::Code(code) => Self::Code(code.into()),
            UdpError::Trap(message) => Self::Trap(wasmtime::Error::msg(message)),
        }
    }
}

impl From<Code> for SocketError {
    fn from(code: Code) -> Self {
        Self::Code(code.into())
    }
}

impl From<ResourceTableError> for SocketError {
    fn from(error: ResourceTableError) -> Self {
        // A handle the table doesn't know is a guest bug the component model
        // normally prevents; a full table is a host limit. Neither is an
        // error-code the WIT documents.
        Self::Trap(error.into())
    }
}

impl From<wasmtime::Error> for SocketError {
    fn from(error: wasmtime::Error) -> Self {
        Self::Trap(error)
    }
}

/// Which operation an OS error came from. A few errnos mean different things
/// depending on the call, and the WIT documents them per function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `create-udp-socket`.
    Create,
    /// `start-bind`.
    Bind,
    /// `stream` (connect or disconnect).
    Connect,
    /// `send`.
    Send,
    /// `receive`.
    Receive,
    /// Socket option getters and setters.
    Option,
    /// Joining or leaving a multicast group (`wasi-udp:extensions`).
    Membership,
}

/// Maps an OS error to the WIT error code for `operation`.
pub(crate) fn code_from_io(error: &io::Error, operation: Operation) -> Code {
    match error.raw_os_error() {
        Some(errno) => code_from_errno(Errno::from_raw_os_error(errno), operation),
        None => match error.kind() {
            io::ErrorKind::WouldBlock => Code::WouldBlock,
            io::ErrorKind::InvalidInput => Code::InvalidArgument,
            io::ErrorKind::PermissionDenied => Code::AccessDenied,
            io::ErrorKind::OutOfMemory => Code::OutOfMemory,
            io::ErrorKind::TimedOut => Code::Timeout,
            io::ErrorKind::Unsupported => Code::NotSupported,
            _ => Code::Unknown,
        },
    }
}

/// Maps an errno to the WIT error code for `operation`. The table follows
/// the errno lists in the WIT text of `udp.wit`, `udp-create-socket.wit`
/// and `network.wit`.
pub(crate) fn code_from_errno(errno: Errno, operation: Operation) -> Code {
    use Operation::*;
    match errno {
        // network.wit: "access-denied ... POSIX equivalent: EACCES, EPERM"
        Errno::ACCESS | Errno::PERM => Code::AccessDenied,
        // network.wit: "out-of-memory ... ENOMEM, ENOBUFS"
        Errno::NOMEM | Errno::NOBUFS => Code::OutOfMemory,
        Errno::OPNOTSUPP => Code::NotSupported,
        // udp-create-socket.wit: "not-supported: The specified address-family
        // is not supported. (EAFNOSUPPORT)"; udp.wit, elsewhere:
        // "invalid-argument: ... wrong address family. (EAFNOSUPPORT)"
        Errno::AFNOSUPPORT if operation == Create => Code::NotSupported,
        Errno::AFNOSUPPORT => Code::InvalidArgument,
        Errno::PROTONOSUPPORT | Errno::PFNOSUPPORT => Code::NotSupported,
        // udp-create-socket.wit: "new-socket-limit: ... (EMFILE, ENFILE)"
        Errno::MFILE | Errno::NFILE => Code::NewSocketLimit,
        // udp.wit start-bind lists EINVAL under "invalid-state: The socket
        // is already bound." The state machine answers that case before any
        // syscall, so an EINVAL from bind(2) is about the address (e.g. a
        // link-local address without a scope id): invalid-argument, as
        // wasmtime-wasi answers too.
        Errno::INVAL => Code::InvalidArgument,
        // udp-extensions.wit: "invalid-state: ... joining a group ... the
        // socket is already in (EADDRINUSE); leaving one it is not in
        // (EADDRNOTAVAIL, ENOENT)"; "invalid-argument: ... an interface
        // index the host does not have ... (ENODEV)"
        Errno::ADDRINUSE | Errno::ADDRNOTAVAIL | Errno::NOENT if operation == Membership => {
            Code::InvalidState
        }
        Errno::NODEV => Code::InvalidArgument,
        Errno::ALREADY => Code::ConcurrencyConflict,
        Errno::WOULDBLOCK => Code::WouldBlock,
        // udp.wit start-bind: "address-in-use: ... (EADDRINUSE)"
        Errno::ADDRINUSE => Code::AddressInUse,
        // udp.wit start-bind: "address-not-bindable: ... (EADDRNOTAVAIL)";
        // stream: "address-in-use: Tried to perform an implicit bind, but
        // there were no ephemeral ports available. (EADDRINUSE, EADDRNOTAVAIL
        // on Linux ...)"; send: "invalid-argument: ... (EDESTADDRREQ,
        // EADDRNOTAVAIL)"
        Errno::ADDRNOTAVAIL => match operation {
            Bind => Code::AddressNotBindable,
            Connect => Code::AddressInUse,
            _ => Code::InvalidArgument,
        },
        // udp.wit send: "(EDESTADDRREQ)", "(EISCONN)" are invalid-argument
        Errno::DESTADDRREQ | Errno::ISCONN => Code::InvalidArgument,
        // udp.wit remote-address: "invalid-state: ... (ENOTCONN)"
        Errno::NOTCONN => Code::InvalidState,
        Errno::CONNREFUSED => Code::ConnectionRefused,
        // udp.wit: "remote-unreachable: ... (ECONNRESET, ENETRESET,
        // EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN, ENONET)"
        Errno::CONNRESET
        | Errno::NETRESET
        | Errno::HOSTUNREACH
        | Errno::HOSTDOWN
        | Errno::NETUNREACH
        | Errno::NETDOWN
        | Errno::NONET => Code::RemoteUnreachable,
        // udp.wit send: "datagram-too-large: ... (EMSGSIZE)"
        Errno::MSGSIZE => Code::DatagramTooLarge,
        Errno::TIMEDOUT => Code::Timeout,
        other => {
            note_unknown_errno(other, operation);
            Code::Unknown
        }
    }
}

/// Logs an errno the table does not know, once per errno per process.
fn note_unknown_errno(errno: Errno, operation: Operation) {
    static SEEN: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    let raw = errno.raw_os_error();
    let first = match usize::try_from(raw) {
        Ok(n) if n < 256 => {
            let bit = 1u64 << (n % 64);
            SEEN[n / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0
        }
        _ => true,
    };
    if first {
        tracing::debug!(
            target: "wasi_udp_host::io",
            "{operation:?} failed with errno {raw} ({}), which the WIT does not name: reported as `unknown`",
            io::Error::from_raw_os_error(raw)
        );
    }
}

/// Whether an error reports something that happened on the network after an
/// earlier send (an ICMP message the kernel queued on the socket), rather
/// than something wrong with the datagram at hand: the errnos the table
/// maps to `connection-refused` or `remote-unreachable`. The kernel reports
/// such an error once; the provider must not lose it.
pub(crate) fn is_asynchronous_network_error(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(|errno| {
        matches!(
            code_from_errno(Errno::from_raw_os_error(errno), Operation::Receive),
            Code::ConnectionRefused | Code::RemoteUnreachable
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(errno: Errno, operation: Operation) -> Code {
        code_from_io(
            &io::Error::from_raw_os_error(errno.raw_os_error()),
            operation,
        )
    }

    #[test]
    fn errnos_named_by_the_wit_map_to_their_codes() {
        use Operation::*;
        let table = [
            (Errno::ACCESS, Send, Code::AccessDenied),
            (Errno::PERM, Bind, Code::AccessDenied),
            (Errno::NOMEM, Receive, Code::OutOfMemory),
            (Errno::NOBUFS, Send, Code::OutOfMemory),
            (Errno::AFNOSUPPORT, Create, Code::NotSupported),
            (Errno::AFNOSUPPORT, Bind, Code::InvalidArgument),
            (Errno::AFNOSUPPORT, Connect, Code::InvalidArgument),
            (Errno::AFNOSUPPORT, Send, Code::InvalidArgument),
            (Errno::MFILE, Create, Code::NewSocketLimit),
            (Errno::NFILE, Create, Code::NewSocketLimit),
            (Errno::INVAL, Bind, Code::InvalidArgument),
            (Errno::INVAL, Option, Code::InvalidArgument),
            (Errno::ADDRINUSE, Bind, Code::AddressInUse),
            (Errno::ADDRINUSE, Connect, Code::AddressInUse),
            (Errno::ADDRNOTAVAIL, Bind, Code::AddressNotBindable),
            (Errno::ADDRNOTAVAIL, Connect, Code::AddressInUse),
            (Errno::ADDRNOTAVAIL, Send, Code::InvalidArgument),
            (Errno::DESTADDRREQ, Send, Code::InvalidArgument),
            (Errno::ISCONN, Send, Code::InvalidArgument),
            (Errno::NOTCONN, Connect, Code::InvalidState),
            (Errno::CONNREFUSED, Receive, Code::ConnectionRefused),
            (Errno::CONNREFUSED, Send, Code::ConnectionRefused),
            (Errno::CONNRESET, Receive, Code::RemoteUnreachable),
            (Errno::NETRESET, Send, Code::RemoteUnreachable),
            (Errno::HOSTUNREACH, Connect, Code::RemoteUnreachable),
            (Errno::HOSTDOWN, Send, Code::RemoteUnreachable),
            (Errno::NETUNREACH, Send, Code::RemoteUnreachable),
            (Errno::NETDOWN, Receive, Code::RemoteUnreachable),
            (Errno::NONET, Receive, Code::RemoteUnreachable),
            (Errno::MSGSIZE, Send, Code::DatagramTooLarge),
            (Errno::ALREADY, Bind, Code::ConcurrencyConflict),
            (Errno::WOULDBLOCK, Bind, Code::WouldBlock),
            (Errno::TIMEDOUT, Receive, Code::Timeout),
            (Errno::OPNOTSUPP, Option, Code::NotSupported),
            (Errno::IO, Receive, Code::Unknown),
        ];
        for (errno, operation, expected) in table {
            assert_eq!(
                code(errno, operation),
                expected,
                "{errno:?} in {operation:?}"
            );
        }
    }

    #[test]
    fn errors_without_errno_map_by_kind() {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "bad");
        assert_eq!(code_from_io(&error, Operation::Send), Code::InvalidArgument);
        let error = io::Error::other("odd");
        assert_eq!(code_from_io(&error, Operation::Send), Code::Unknown);
    }

    #[test]
    fn the_asynchronous_errors_are_the_tables_network_codes() {
        for errno in [
            Errno::CONNREFUSED,
            Errno::CONNRESET,
            Errno::NETRESET,
            Errno::HOSTUNREACH,
            Errno::HOSTDOWN,
            Errno::NETUNREACH,
            Errno::NETDOWN,
            Errno::NONET,
        ] {
            let error = io::Error::from_raw_os_error(errno.raw_os_error());
            assert!(is_asynchronous_network_error(&error), "{errno:?}");
        }
        for errno in [Errno::MSGSIZE, Errno::INVAL, Errno::ACCESS, Errno::IO] {
            let error = io::Error::from_raw_os_error(errno.raw_os_error());
            assert!(!is_asynchronous_network_error(&error), "{errno:?}");
        }
    }

    #[test]
    fn every_code_converts_to_its_bindgen_twin() {
        assert_eq!(ErrorCode::from(Code::AccessDenied), ErrorCode::AccessDenied);
        assert_eq!(
            ErrorCode::from(Code::DatagramTooLarge),
            ErrorCode::DatagramTooLarge
        );
        let error: SocketError = UdpError::trap("broke the contract").into();
        assert!(error.code().is_none());
    }
}
