//! The one error table: OS errors to WIT `error-code`, and the line between a
//! guest-visible error and a trap.

use std::fmt;
use std::io;

use rustix::io::Errno;
use wasmtime::component::ResourceTableError;

use crate::bindings::ErrorCode;

/// What a UDP host function failed with: either an `error-code` the guest
/// receives, or a trap that ends the guest because it broke the interface's
/// contract (or because the host itself failed).
pub enum SocketError {
    /// Returned to the guest as `error(code)`.
    Code(ErrorCode),
    /// Ends the guest's call with this trap.
    Trap(wasmtime::Error),
}

/// Result of a UDP host operation.
pub type SocketResult<T> = Result<T, SocketError>;

impl SocketError {
    /// A trap with a message, for guests that broke the WIT contract.
    pub fn trap(message: impl fmt::Display) -> Self {
        Self::Trap(wasmtime::Error::msg(message.to_string()))
    }

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
pub enum Operation {
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
}

/// Maps an OS error to the WIT `error-code` for `operation`.
///
/// The table follows the errno lists in the WIT text of `udp.wit`,
/// `udp-create-socket.wit` and `network.wit`.
pub fn error_code_from_io(error: &io::Error, operation: Operation) -> ErrorCode {
    let Some(errno) = error.raw_os_error().map(Errno::from_raw_os_error) else {
        return match error.kind() {
            io::ErrorKind::WouldBlock => ErrorCode::WouldBlock,
            io::ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
            io::ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
            io::ErrorKind::OutOfMemory => ErrorCode::OutOfMemory,
            io::ErrorKind::TimedOut => ErrorCode::Timeout,
            _ => ErrorCode::Unknown,
        };
    };
    error_code_from_errno(errno, operation)
}

/// Maps an errno to the WIT `error-code` for `operation`; see
/// [`error_code_from_io`].
pub fn error_code_from_errno(errno: Errno, operation: Operation) -> ErrorCode {
    use Operation::*;
    match errno {
        // network.wit: "access-denied ... POSIX equivalent: EACCES, EPERM"
        Errno::ACCESS | Errno::PERM => ErrorCode::AccessDenied,
        // network.wit: "out-of-memory ... ENOMEM, ENOBUFS"
        Errno::NOMEM | Errno::NOBUFS => ErrorCode::OutOfMemory,
        Errno::OPNOTSUPP => ErrorCode::NotSupported,
        // udp-create-socket.wit: "not-supported: The specified address-family
        // is not supported. (EAFNOSUPPORT)"; udp.wit, elsewhere:
        // "invalid-argument: ... wrong address family. (EAFNOSUPPORT)"
        Errno::AFNOSUPPORT if operation == Create => ErrorCode::NotSupported,
        Errno::AFNOSUPPORT => ErrorCode::InvalidArgument,
        Errno::PROTONOSUPPORT | Errno::PFNOSUPPORT => ErrorCode::NotSupported,
        // udp-create-socket.wit: "new-socket-limit: ... (EMFILE, ENFILE)"
        Errno::MFILE | Errno::NFILE => ErrorCode::NewSocketLimit,
        // udp.wit start-bind: "invalid-state: The socket is already bound. (EINVAL)"
        Errno::INVAL if operation == Bind => ErrorCode::InvalidState,
        Errno::INVAL => ErrorCode::InvalidArgument,
        Errno::ALREADY => ErrorCode::ConcurrencyConflict,
        Errno::WOULDBLOCK => ErrorCode::WouldBlock,
        // udp.wit start-bind: "address-in-use: ... (EADDRINUSE)"
        Errno::ADDRINUSE => ErrorCode::AddressInUse,
        // udp.wit start-bind: "address-not-bindable: ... (EADDRNOTAVAIL)";
        // stream: "address-in-use: Tried to perform an implicit bind, but
        // there were no ephemeral ports available. (EADDRINUSE, EADDRNOTAVAIL
        // on Linux ...)"; send: "invalid-argument: ... (EDESTADDRREQ,
        // EADDRNOTAVAIL)"
        Errno::ADDRNOTAVAIL => match operation {
            Bind => ErrorCode::AddressNotBindable,
            Connect => ErrorCode::AddressInUse,
            _ => ErrorCode::InvalidArgument,
        },
        // udp.wit send: "(EDESTADDRREQ)", "(EISCONN)" are invalid-argument
        Errno::DESTADDRREQ | Errno::ISCONN => ErrorCode::InvalidArgument,
        // udp.wit remote-address: "invalid-state: ... (ENOTCONN)"
        Errno::NOTCONN => ErrorCode::InvalidState,
        Errno::CONNREFUSED => ErrorCode::ConnectionRefused,
        // udp.wit: "remote-unreachable: ... (ECONNRESET, ENETRESET,
        // EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN, ENONET)"
        Errno::CONNRESET
        | Errno::NETRESET
        | Errno::HOSTUNREACH
        | Errno::HOSTDOWN
        | Errno::NETUNREACH
        | Errno::NETDOWN
        | Errno::NONET => ErrorCode::RemoteUnreachable,
        // udp.wit send: "datagram-too-large: ... (EMSGSIZE)"
        Errno::MSGSIZE => ErrorCode::DatagramTooLarge,
        Errno::TIMEDOUT => ErrorCode::Timeout,
        _ => ErrorCode::Unknown,
    }
}

/// Whether an error reports something that happened on the network after an
/// earlier send (an ICMP message the kernel queued on the socket), rather than
/// something wrong with the datagram at hand. The kernel reports such an error
/// once; the provider must not lose it.
pub fn is_asynchronous_network_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw_os_error),
        Some(
            Errno::CONNREFUSED
                | Errno::CONNRESET
                | Errno::NETRESET
                | Errno::HOSTUNREACH
                | Errno::HOSTDOWN
                | Errno::NETUNREACH
                | Errno::NETDOWN
                | Errno::NONET
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(errno: Errno, operation: Operation) -> ErrorCode {
        error_code_from_io(
            &io::Error::from_raw_os_error(errno.raw_os_error()),
            operation,
        )
    }

    #[test]
    fn errnos_named_by_the_wit_map_to_their_codes() {
        use Operation::*;
        let table = [
            (Errno::ACCESS, Send, ErrorCode::AccessDenied),
            (Errno::PERM, Bind, ErrorCode::AccessDenied),
            (Errno::NOMEM, Receive, ErrorCode::OutOfMemory),
            (Errno::NOBUFS, Send, ErrorCode::OutOfMemory),
            (Errno::AFNOSUPPORT, Create, ErrorCode::NotSupported),
            (Errno::AFNOSUPPORT, Bind, ErrorCode::InvalidArgument),
            (Errno::AFNOSUPPORT, Connect, ErrorCode::InvalidArgument),
            (Errno::AFNOSUPPORT, Send, ErrorCode::InvalidArgument),
            (Errno::MFILE, Create, ErrorCode::NewSocketLimit),
            (Errno::NFILE, Create, ErrorCode::NewSocketLimit),
            (Errno::INVAL, Bind, ErrorCode::InvalidState),
            (Errno::INVAL, Option, ErrorCode::InvalidArgument),
            (Errno::ADDRINUSE, Bind, ErrorCode::AddressInUse),
            (Errno::ADDRINUSE, Connect, ErrorCode::AddressInUse),
            (Errno::ADDRNOTAVAIL, Bind, ErrorCode::AddressNotBindable),
            (Errno::ADDRNOTAVAIL, Connect, ErrorCode::AddressInUse),
            (Errno::ADDRNOTAVAIL, Send, ErrorCode::InvalidArgument),
            (Errno::DESTADDRREQ, Send, ErrorCode::InvalidArgument),
            (Errno::ISCONN, Send, ErrorCode::InvalidArgument),
            (Errno::NOTCONN, Connect, ErrorCode::InvalidState),
            (Errno::CONNREFUSED, Receive, ErrorCode::ConnectionRefused),
            (Errno::CONNREFUSED, Send, ErrorCode::ConnectionRefused),
            (Errno::CONNRESET, Receive, ErrorCode::RemoteUnreachable),
            (Errno::NETRESET, Send, ErrorCode::RemoteUnreachable),
            (Errno::HOSTUNREACH, Connect, ErrorCode::RemoteUnreachable),
            (Errno::HOSTDOWN, Send, ErrorCode::RemoteUnreachable),
            (Errno::NETUNREACH, Send, ErrorCode::RemoteUnreachable),
            (Errno::NETDOWN, Receive, ErrorCode::RemoteUnreachable),
            (Errno::NONET, Receive, ErrorCode::RemoteUnreachable),
            (Errno::MSGSIZE, Send, ErrorCode::DatagramTooLarge),
            (Errno::ALREADY, Bind, ErrorCode::ConcurrencyConflict),
            (Errno::WOULDBLOCK, Bind, ErrorCode::WouldBlock),
            (Errno::TIMEDOUT, Receive, ErrorCode::Timeout),
            (Errno::OPNOTSUPP, Option, ErrorCode::NotSupported),
            (Errno::IO, Receive, ErrorCode::Unknown),
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
        assert_eq!(
            error_code_from_io(&error, Operation::Send),
            ErrorCode::InvalidArgument
        );
        let error = io::Error::other("odd");
        assert_eq!(
            error_code_from_io(&error, Operation::Send),
            ErrorCode::Unknown
        );
    }

    #[test]
    fn icmp_reported_errors_are_asynchronous() {
        let refused = io::Error::from_raw_os_error(Errno::CONNREFUSED.raw_os_error());
        assert!(is_asynchronous_network_error(&refused));
        let too_large = io::Error::from_raw_os_error(Errno::MSGSIZE.raw_os_error());
        assert!(!is_asynchronous_network_error(&too_large));
    }
}
