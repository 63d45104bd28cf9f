"""``ReadAhead``: paho's reads served from one large ``recv``, every buffered packet decoded
per wake-up. Unit edges on a scripted socket, then a real paho/aiomqtt client on the real
Mosquitto: bursts, packets split across reads, and nothing left waiting in the buffer."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest
from paho.mqtt import client as mqtt

from otaudit.mqtt import client_kwargs
from otaudit.server.listener import READ_AHEAD, ReadAhead, session_kwargs
from otaudit.settings import Settings

SUCCESS = mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


class ScriptedClient:
    """What ReadAhead uses of a paho client: ``_sock_recv`` and ``loop_read``."""

    def __init__(self, chunks: list[bytes | type[BaseException]]) -> None:
        self.chunks = chunks
        self.asked: list[int] = []
        self.loops = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        self.asked.append(bufsize)
        chunk = self.chunks.pop(0)
        if isinstance(chunk, type):
            raise chunk()
        return chunk

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        self.loops += 1
        return SUCCESS


def test_small_reads_come_from_one_large_recv() -> None:
    client = ScriptedClient([b"0123456789", b"abc"])
    reader = ReadAhead.install(client, size=64)  # type: ignore[arg-type]
    assert client._sock_recv(1) == b"0"  # paho's command byte
    assert client.asked == [64] and reader.pending() == 9
    assert client._sock_recv(2) == b"12"
    assert client._sock_recv(100) == b"3456789"  # what is left, without another recv
    assert client.asked == [64] and reader.pending() == 0
    assert client._sock_recv(1000) == b"abc"  # a larger read asks for its size
    assert client.asked == [64, 1000] and reader.reads == 2


def test_the_end_of_the_stream_and_socket_errors_reach_paho_as_before() -> None:
    client = ScriptedClient([b"", BlockingIOError, ConnectionResetError, b"x"])
    reader = ReadAhead(client, size=16)  # type: ignore[arg-type]
    assert reader.recv(1) == b""  # paho: connection lost
    with pytest.raises(BlockingIOError):  # paho: try again when readable
        reader.recv(1)
    with pytest.raises(ConnectionResetError):
        reader.recv(1)
    assert reader.recv(1) == b"x" and reader.pending() == 0


def test_loop_read_runs_until_the_buffer_is_empty() -> None:
    client = ScriptedClient([b"abcd"])
    reader = ReadAhead(client, size=16)  # type: ignore[arg-type]
    reader.recv(1)
    calls = []

    def consume(max_packets: int = 1) -> mqtt.MQTTErrorCode:  # one byte per "packet"
        calls.append(max_packets)
        if reader.pending():
            reader.recv(1)
        return SUCCESS

    reader._loop_read = consume
    assert reader.loop_read() == SUCCESS
    assert reader.pending() == 0 and len(calls) == 3  # b"bcd", then stops: nothing pending

    stopped = ScriptedClient([b"abcd"])
    reader = ReadAhead(stopped, size=16)  # type: ignore[arg-type]
    reader.recv(1)
    reader._loop_read = lambda max_packets=1: mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert reader.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST  # errors end the loop
    assert reader.pending() == 3


@pytest.mark.parametrize("size", [64, READ_AHEAD])
async def test_a_real_client_receives_a_backlog_intact(mosquitto_url: str, size: int) -> None:
    """A persistent session's backlog arrives in a burst, as the server meets it after a
    restart: small messages many to a read, large ones across many reads (64 bytes: every
    packet spans reads), and the last one arrives: nothing stays in the buffer unread."""
    settings = Settings(broker_url=mosquitto_url,
                        server_client_id=f"read-ahead-{uuid.uuid4().hex[:8]}")
    topic = f"otaudit-test/{uuid.uuid4().hex[:8]}/read-ahead"
    sent = [f"small-{i}".encode() for i in range(300)]
    sent[100:100] = [bytes([i]) * 200_000 for i in range(3)]
    sent.append(b"last")

    def subscriber() -> aiomqtt.Client:
        return aiomqtt.Client(identifier=settings.server_client_id, **client_kwargs(settings),
                              **session_kwargs(settings))

    async with subscriber() as sub:  # the session that queues the backlog
        await sub.subscribe(topic, qos=1)
    async with aiomqtt.Client(**client_kwargs(settings)) as pub:
        for payload in sent:
            await pub.publish(topic, payload, qos=1)
    sub = subscriber()
    reader = ReadAhead.install(sub._client, size=size)
    received: list[bytes] = []
    async with sub:
        async with asyncio.timeout(20):
            async for message in sub.messages:
                received.append(bytes(message.payload))
                if len(received) == len(sent):
                    break
    assert received == sent
    # without ReadAhead a packet takes 3 or 4 recv calls; with it, many packets share one
    # (64 bytes: a small packet is about that long, so most are split between two reads)
    assert reader.reads < len(sent) / (1 if size == 64 else 10), reader.reads
