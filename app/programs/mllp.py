"""The MLLP listener (``outreach mllp --port 2575``): how interface engines deliver HL7 v2 feeds.

MLLP (HL7 v2 Minimal Lower Layer Protocol): each message is framed ``0x0b`` + message + ``0x1c 0x0d``,
and the receiver answers each one with an ACK framed the same way, on the same connection, in order.
Bytes outside a frame are ignored; a frame larger than ``MAX_FRAME`` closes the connection. One thread per
connection (interface engines keep one or a few open); every message is its own transaction
(``app.programs.adt.receive_adt``), so several listeners may run against the same database.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

START = b"\x0b"
END = b"\x1c\x0d"
MAX_FRAME = 1024 * 1024
IDLE_TIMEOUT_S = 300.0

log = logging.getLogger(__name__)

Handler = Callable[[str], str]


def frame(message: str) -> bytes:
    """``message`` framed for MLLP (UTF-8)."""
    return START + message.encode("utf-8") + END


def read_frames(sock: socket.socket) -> Iterator[bytes]:
    """The framed messages arriving on ``sock`` until it closes (payload without the framing bytes)."""
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while True:
            start = buffer.find(START)
            if start < 0:
                buffer = b""
                break
            end = buffer.find(END, start + 1)
            if end < 0:
                buffer = buffer[start:]
                if len(buffer) > MAX_FRAME:
                    raise ValueError("frame too large")
                break
            yield buffer[start + 1 : end]
            buffer = buffer[end + len(END) :]


def decode(payload: bytes) -> str:
    """HL7 v2.5+ prefers UTF-8; older feeds send Latin-1 (every byte decodes)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


class _Connection(socketserver.BaseRequestHandler):
    server: MllpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(IDLE_TIMEOUT_S)
        try:
            for payload in read_frames(sock):
                ack = self.server.handler(decode(payload))
                sock.sendall(frame(ack))
        except (TimeoutError, ConnectionError, ValueError) as exc:
            log.info("mllp connection closed: %s", type(exc).__name__)


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Handler):
        self.handler = handler
        super().__init__(address, _Connection)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="mllp", daemon=True)
        thread.start()
        return thread


def send_message(host: str, port: int, message: str, timeout: float = 10.0) -> str:
    """Send one message over MLLP and return the ACK (a small client for tests and ``bench/``)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame(message))
        for payload in read_frames(sock):
            return decode(payload)
    raise ConnectionError("the listener closed the connection without an ACK")
