"""Local receivers of alerts for tests: an HTTP server thread with scripted answers, a UDP
and a TCP syslog socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Answers each POST with the next status of ``script`` (then 200), records it."""

    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    got: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver(script: list[int] | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(list(script or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(Received(dict(self.headers.items()), body))
            status = receiver.script.pop(0) if receiver.script else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if status < 300:
                receiver.got.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/otaudit"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def udp_syslog() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        yield sock
    finally:
        sock.close()


@dataclass
class TcpSyslog:
    port: int
    frames: list[bytes] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)


@contextmanager
def tcp_syslog() -> Iterator[TcpSyslog]:
    """Accepts connections and reads octet-counted frames (RFC 6587)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    sink = TcpSyslog(listener.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                while data:
                    length, _, rest = data.partition(b" ")
                    sink.frames.append(rest[:int(length)])
                    data = rest[int(length):]
                sink.got.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        listener.close()
