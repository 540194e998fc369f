"""A Python guest with nothing but the standard `socket` module: an echo
over UDP between two sockets on loopback, and a name looked up the way any
Python program does. Built into a wasi:cli/command component with
componentize-py (see README.md); run with `wasi-udp app.wasm`.

Prints:

    a bound to ('127.0.0.1', PORT_A), b bound to ('127.0.0.1', PORT_B)
    b received b'hello from python' from ('127.0.0.1', PORT_A)
    a received b'echo: hello from python' from ('127.0.0.1', PORT_B)
    localhost is 127.0.0.1
"""

import socket
import sys

# componentize-py keeps only the standard library modules imported while it
# builds the component; getaddrinfo() encodes host names with the idna codec.
import encodings.idna  # noqa: F401

import wit_world.exports


def main() -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    print(f"a bound to {a.getsockname()}, b bound to {b.getsockname()}")

    a.sendto(b"hello from python", b.getsockname())
    data, source = b.recvfrom(1024)
    print(f"b received {data!r} from {source}")
    b.sendto(b"echo: " + data, source)
    data, source = a.recvfrom(1024)
    print(f"a received {data!r} from {source}")

    family, _, _, _, address = socket.getaddrinfo("localhost", 0, socket.AF_INET)[0]
    print(f"localhost is {address[0]}")
    a.close()
    b.close()


class Run(wit_world.exports.Run):
    def run(self) -> None:
        main()
        sys.stdout.flush()
