"""Checks and stores the listener's batches in a process of its own.

Under one interpreter lock the server's halves take turns: decoding MQTT and acknowledging
(paho, asyncio) and checking and storing observations (pydantic, SQLAlchemy, the driver),
and a server cannot use a second core for ingest. With a ``StoreWorker`` the server process
keeps the broker (receiving, acknowledging after the commit, receipts), evaluation, alerts,
metrics and the API, and the worker process runs ``Ingestor.check`` and the storing
transaction (``Ingestor.commit``) of each batch. (On the 2-core CI machine, where the broker
and the benchmark's publisher take the other core, bench/ingest.py measures about the same
rate either way; the split is for servers with cores to spare.)

The worker builds its own Ingestor with ``factory`` (a picklable callable: the worker is
spawned, not forked, because the server process runs threads); it is never asked to
evaluate. The server's Ingestor stays the one the rest of the server sees
(``Ingestor.store_with``): it holds its lock while a batch is in the worker, so storage and
evaluation still never overlap, and it counts the rejections and sends the alerts.

Batches overlap: the server sends the next batch while the worker stores one (``commit``
calls may overlap; answers come in sending order), and a thread of the worker reads it
meanwhile (a batch is larger than the socket's buffer), so the worker does not wait for the
busy server between two batches.

Nothing is lost when the worker dies (killed, out of memory): the batch in it was not
acknowledged, a fresh worker gets it again (ingest is idempotent), and should the fresh one
die on the same batch too, ``WorkerDied`` stops the server with the batch unacknowledged.
The batches that were in a worker when it died go to its successor in their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from otaudit.server.ingest import IngestResult, StoreUnavailable

if TYPE_CHECKING:
    from otaudit.server.ingest import Ingestor

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # seconds a worker may take to build its Ingestor


class WorkerFailed(RuntimeError):
    """The store worker could not start (its factory failed) or broke down."""


class WorkerDied(WorkerFailed):
    """The store worker died twice on the same batch; the batch is not acknowledged."""


class StoreWorker:
    """A process that checks and stores batches for the server (``commit``)."""

    def __init__(self, factory: Callable[[], Ingestor], *,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.factory, self.start_timeout = factory, start_timeout
        self._context = multiprocessing.get_context("spawn")
        self._closing = False
        self._process: Any = None
        self._conn: Connection | None = None
        self._closer: Connection | None = None  # a byte written here: give up waiting
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._replies: deque[asyncio.Future[tuple[str, Any]]] = deque()  # in sending order
        self._reader: asyncio.Task[None] | None = None  # reads them while any is awaited
        self._sending: asyncio.Lock | None = None  # batches go out (and again) in order
        self.restarts = 0  # workers started again after one died

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the worker and wait until its Ingestor is built; ``WorkerFailed`` says why
        not (the factory's error: a database that cannot be opened, a bad baseline)."""
        ours, theirs = self._context.Pipe()
        hears, closer = self._context.Pipe(duplex=False)  # not an Event: its semaphores
        # wedge the server's set() once a worker that waited on it was killed
        process = self._context.Process(target=_work, args=(self.factory, theirs, hears),
                                        name="otaudit-store", daemon=True)
        process.start()
        theirs.close()
        hears.close()
        self._process, self._conn, self._closer = process, ours, closer
        if not self._wait(ours, self.start_timeout):
            self._stop(kill=True)
            raise WorkerFailed(f"the store worker did not start within "
                               f"{self.start_timeout:g} s")
        try:
            status, detail = ours.recv()
        except (EOFError, OSError):
            status, detail = "failed", f"it exited with code {process.exitcode}"
        if status != "ready":
            self._stop(kill=True)
            raise WorkerFailed(f"the store worker could not start: {detail}")

    async def commit(self, messages: Sequence[tuple[str, bytes]]) -> IngestResult:
        """Check and store ``messages`` in the worker; a worker that dies meanwhile is
        replaced and given the batch again, once.

        Calls may overlap: each batch is sent at once (the worker takes them in turn, so it
        does not wait for the server between two batches) and answered in sending order.
        The batches that were in a worker when it died are sent again in their order."""
        restarts = self.restarts
        try:
            return _answer(await self._round_trip(messages))
        except _Died as died:
            if self._closing:
                raise StoreUnavailable("the store worker was closed") from None
            why = died
        async with self._sending_lock():  # the next batch in flight waits for the restart
            if self.restarts == restarts:  # no other batch has replaced the worker yet
                log.error("the store worker died (%s); starting another one and storing "
                          "the batch again", why)
                self.leave_loop()  # here, in the loop's thread: the next one may reuse its fd
                await asyncio.to_thread(self._restart)
            reply = await self._send(messages)
        try:
            return _answer(await reply)
        except _Died as died:
            raise WorkerDied(f"the store worker died twice on one batch of "
                             f"{len(messages)} messages ({died}): they stay unacknowledged"
                             ) from None

    def close(self) -> None:
        """Let a worker waiting for the database give up, then stop it."""
        self._closing = True
        if self._closer is not None:
            with contextlib.suppress(OSError):
                self._closer.send_bytes(b"close")
        self._stop(kill=False)

    def leave_loop(self) -> None:
        """Close the event loop's duplicate of the worker's socket; call it in the loop's
        thread before the loop ends (``serve`` does), or the next loop may reuse its fd."""
        streams, self._streams = self._streams, None
        reader, self._reader = self._reader, None
        replies, self._replies = self._replies, deque()
        with contextlib.suppress(RuntimeError):  # its loop has ended: closed when freed
            if reader is not None:
                reader.cancel()
            for reply in replies:  # sent to a connection now gone: sent again if awaited
                if not reply.done():
                    reply.set_exception(_Died("its connection was closed"))
            if streams is not None:
                streams[1].transport.abort()
        if self._sending is not None and not self._sending.locked():
            self._sending = None  # the next loop makes its own (unless a restart holds it)

    def _restart(self) -> None:
        self._stop(kill=True)
        self.start()
        self.restarts += 1

    def _sending_lock(self) -> asyncio.Lock:
        if self._sending is None:  # made in the loop that uses it
            self._sending = asyncio.Lock()
        return self._sending

    async def _round_trip(self, messages: Sequence[tuple[str, bytes]]) -> tuple[str, Any]:
        async with self._sending_lock():
            reply = await self._send(messages)
        return await reply

    async def _send(self, messages: Sequence[tuple[str, bytes]]
                    ) -> asyncio.Future[tuple[str, Any]]:
        """Write the batch (hold ``_sending``); return the future of its answer. Written and
        read in the event loop's thread: a thread of its own would wait for the interpreter
        lock after every write of a large batch."""
        if self._conn is None:
            raise WorkerFailed("the store worker is not running")
        if self._streams is None:
            sock = socket.socket(fileno=os.dup(self._conn.fileno()))
            self._streams = await asyncio.open_unix_connection(sock=sock)
        writer = self._streams[1]
        reply: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies.append(reply)  # before any await: answers come in this order
        _write_frame(writer, pickle.dumps(list(messages), pickle.HIGHEST_PROTOCOL))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_replies(self._streams[0]))
        with contextlib.suppress(ConnectionError):  # a dead worker: the reader says why
            await writer.drain()
        return reply

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        """Answer the batches sent, in order, while any waits; when the worker dies, every
        batch still in it gets ``_Died``."""
        replies = self._replies
        try:
            while replies:
                answer = pickle.loads(await _read_frame(reader))
                reply = replies.popleft()
                if not reply.done():  # not cancelled meanwhile
                    reply.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            failure: Exception = _Died(await asyncio.to_thread(self._why_dead, exc))  # a join
        except Exception as exc:  # an answer that cannot be read: the server stops
            failure = WorkerFailed(f"the store worker's answer cannot be read: {exc!r}")
        else:
            return
        finally:
            if self._reader is asyncio.current_task():
                self._reader = None
        while replies:
            reply = replies.popleft()
            if not reply.done():
                reply.set_exception(failure)

    def _wait(self, conn: Connection, timeout: float) -> bool:
        """Whether ``conn`` has something to read within ``timeout`` (False: the worker died
        or took longer)."""
        return bool(multiprocessing.connection.wait([conn, self._process.sentinel], timeout)
                    ) and conn.poll()

    def _why_dead(self, exc: BaseException) -> str:
        process = self._process
        if process is None:
            return "it was stopped"
        process.join(timeout=5)
        code = process.exitcode
        return f"exit code {code}" if code is not None else type(exc).__name__

    def _stop(self, *, kill: bool) -> None:
        self.leave_loop()
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if self._closer is not None:
            self._closer.close()
            self._closer = None
        if process is None:
            return
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    conn.send(None)  # finish the batch in hand, then exit
            conn.close()
        process.join(timeout=0 if kill else 30)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)


def _answer(reply: tuple[str, Any]) -> IngestResult:
    status, value = reply
    if status == "ok":
        return value
    if status == "unavailable":
        raise StoreUnavailable(value)
    raise WorkerFailed(f"the store worker failed: {value}")


def _write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    """``data`` framed as ``multiprocessing.connection.Connection.send_bytes`` frames anything
    under 2 GiB (a batch is at most ``MAX_BATCH`` messages of ``MAX_MESSAGE_BYTES``)."""
    writer.write(struct.pack("!i", len(data)))
    writer.write(data)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One frame as ``Connection.send`` writes a reply (a pickle, far under 2 GiB)."""
    (size,) = struct.unpack("!i", await reader.readexactly(4))
    return await reader.readexactly(size)


class _Died(Exception):
    """The worker process ended without answering."""


def _work(factory: Callable[[], Ingestor], conn: Connection, closing: Connection) -> None:
    """The worker process: build the Ingestor, then check and store each batch received
    until ``None`` or the server's end of the pipe closes. Anything on ``closing`` (or its
    end: the server is gone) closes the Ingestor: a wait for the database gives up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when this stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ingestor = factory()
    except BaseException as exc:  # the server reports it; nothing to clean up
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return

    def close_when_asked() -> None:
        with contextlib.suppress(EOFError, OSError):
            closing.recv_bytes()
        ingestor.close()

    threading.Thread(target=close_when_asked, name="otaudit-store-close", daemon=True).start()
    from otaudit.server.listener import lean_gc  # not at the top: listener imports this

    conn.send(("ready", None))
    with lean_gc():  # as the server: Python's default thresholds cost a third of the CPU
        _serve_batches(ingestor, conn)
    ingestor.engine.dispose()


def _serve_batches(ingestor: Ingestor, conn: Connection) -> None:
    """Check and store each batch, in order. A thread reads the next batch from the server
    while this one is stored: a batch is larger than the socket's buffer, and read only
    when its turn came it would arrive at the pace the busy server refills that buffer."""
    frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def receive() -> None:
        try:
            while True:
                frames.put(conn.recv_bytes())
        except (EOFError, OSError):
            frames.put(None)

    threading.Thread(target=receive, name="otaudit-store-receive", daemon=True).start()
    while (frame := frames.get()) is not None:
        messages = pickle.loads(frame)
        if messages is None:
            break
        try:
            reply: tuple[str, Any] = ("ok", ingestor.commit(ingestor.check(messages)))
        except StoreUnavailable as exc:
            reply = ("unavailable", str(exc))
        except Exception as exc:  # reported to the server, which stops
            log.exception("the store worker failed on a batch")
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except OSError:
            break
