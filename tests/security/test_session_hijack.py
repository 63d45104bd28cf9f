"""The shipped broker rules (docs/deploy/mosquitto: ACL + ``use_username_as_clientid``) for
receipts and sessions, on a private Mosquitto with password users:

- a collector credential connecting with the server's client id and clean start cannot wipe
  the server's queued session (it did: 50 of 50 queued observations lost);
- receipts: only a server may write them, a collector reads only its own;
- a publish the ACL refuses (MQTT 5 PUBACK 0x87) is no acknowledgement: the entry stays in
  the outbox, counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from pathlib import Path

import aiomqtt
import pytest
from security_pki import acl_example, keep_user, password_file

from otaudit.collector.forwarder import Forwarder
from otaudit.collector.outbox import Outbox
from otaudit.mqtt import (
    client_kwargs,
    observation_filter,
    observation_topic,
    persistent_session_kwargs,
    receipt_topic,
)
from otaudit.settings import Settings

from support.observations import make_observation

pytestmark = pytest.mark.mosquitto
PREFIX = "otaudit-hijack/v1"
SHIPPED_LISTENER = "use_username_as_clientid true\n"  # as docs/deploy/mosquitto/otaudit.conf


def shipped_rules_in(conf: Path) -> bool:
    text = conf.read_text()
    return "use_username_as_clientid true" in text and "acl_file" in text


@pytest.fixture
def users() -> dict[str, str]:
    return {name: secrets.token_urlsafe(12) for name in ("otaudit-server", "c1", "c2")}


def broker_with(mosquitto_factory, tmp_path: Path, users: dict[str, str],  # type: ignore[no-untyped-def]
                listener: str = SHIPPED_LISTENER):
    passwd = password_file(tmp_path, users)
    acl = tmp_path / "acl"
    acl.write_text(acl_example(PREFIX))
    broker = mosquitto_factory(keep_user() + f"allow_anonymous false\npassword_file {passwd}\n"
                               f"acl_file {acl}\n{listener}")
    broker.start()
    return broker


def as_user(broker, user: str, users: dict[str, str], **extra: object) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(_env_file=None, broker_url=broker.url, topic_prefix=PREFIX,
                    mqtt_username=user, mqtt_password=users[user], **extra)


async def queued_for_server(broker, users: dict[str, str], count: int,  # type: ignore[no-untyped-def]
                            rogue: bool) -> int:
    """The server creates its persistent session and leaves; c1 publishes ``count``
    observations; a rogue (c1's credential, the server's client id, clean start) connects
    or not; how many does the server then get?"""
    server = as_user(broker, "otaudit-server", users, server_client_id="otaudit-server")
    session = dict(identifier="otaudit-server", **persistent_session_kwargs(server))
    async with aiomqtt.Client(**client_kwargs(server), **session) as client:
        await client.subscribe(observation_filter(PREFIX), qos=1)
    c1 = as_user(broker, "c1", users)
    async with aiomqtt.Client(**client_kwargs(c1)) as client:
        for i in range(count):
            obs = make_observation(site="s1", collector="c1", asset=f"plc-{i}")
            await client.publish(observation_topic(PREFIX, "s1", "c1", obs.asset.id),
                                 obs.to_json(), qos=1)
    if rogue:
        async with aiomqtt.Client(**client_kwargs(c1), identifier="otaudit-server",
                                  clean_start=True):
            pass
    got = 0
    async with aiomqtt.Client(**client_kwargs(server), **session) as client:
        messages = aiter(client.messages)
        while True:
            try:
                await asyncio.wait_for(anext(messages), 1.0)
            except TimeoutError:
                return got
            got += 1


async def test_a_collector_credential_cannot_wipe_the_server_session(
        tmp_path: Path, mosquitto_factory, users: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    broker = broker_with(mosquitto_factory, tmp_path, users)
    assert shipped_rules_in(Path(__file__).parents[2] / "docs/deploy/mosquitto/otaudit.conf")
    assert await queued_for_server(broker, users, 50, rogue=True) == 50


async def test_without_the_client_id_binding_the_rogue_wipes_the_queue(
        tmp_path: Path, mosquitto_factory, users: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The hole the shipped line closes (receipts make the collectors re-send: see
    tests/durability/test_faults.py)."""
    broker = broker_with(mosquitto_factory, tmp_path, users, listener="")
    assert await queued_for_server(broker, users, 50, rogue=True) == 0
    assert await queued_for_server(broker, users, 5, rogue=False) == 5


async def test_only_servers_write_receipts_and_a_collector_reads_only_its_own(
        tmp_path: Path, mosquitto_factory, users: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    broker = broker_with(mosquitto_factory, tmp_path, users)
    server, c1, c2 = (as_user(broker, u, users) for u in ("otaudit-server", "c1", "c2"))
    own, theirs = receipt_topic(PREFIX, "s1", "c1"), receipt_topic(PREFIX, "s1", "c2")
    async with aiomqtt.Client(**client_kwargs(c1)) as reader, \
            aiomqtt.Client(**client_kwargs(server)) as writer, \
            aiomqtt.Client(**client_kwargs(c2)) as forger:
        await reader.subscribe(f"{PREFIX}/+/+/receipt", qos=1)
        await forger.publish(own, b"forged by c2", qos=1)  # refused by the ACL
        await writer.publish(theirs, b"for c2", qos=1)
        await writer.publish(own, b"for c1", qos=1)
        received = []
        messages = aiter(reader.messages)
        while True:
            try:
                message = await asyncio.wait_for(anext(messages), 0.5)
            except TimeoutError:
                break
            received.append((str(message.topic), bytes(message.payload)))
    assert received == [(own, b"for c1")]


async def test_a_refused_publish_stays_in_the_outbox_counted_and_logged(
        tmp_path: Path, mosquitto_factory, users: dict[str, str],  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    broker = broker_with(mosquitto_factory, tmp_path, users)
    settings = as_user(broker, "c1", users, receipts=False, receipt_timeout=60)
    box = Outbox(tmp_path / "outbox.db", max_entries=100, max_bytes=10**7)
    allowed = make_observation(site="s1", collector="c1", asset="plc-1")
    denied = [make_observation(site="s1", collector="c2", asset=f"plc-{i}") for i in range(3)]
    for obs in [allowed, *denied]:  # c2's topics: the ACL refuses c1 there
        box.append(str(obs.observation_id),
                   observation_topic(PREFIX, obs.site, obs.collector_id, obs.asset.id),
                   obs.to_json())
    caplog.set_level(logging.WARNING, logger="otaudit.collector")
    forwarder = Forwarder(box, settings, client_id=f"c1-{uuid.uuid4().hex[:6]}")
    running = asyncio.create_task(forwarder.run())
    try:
        async with asyncio.timeout(10):
            while forwarder.refused < 3 or forwarder.published < 1:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a wrong implementation would now delete them
    finally:
        await forwarder.close(1)
        await running
    kept = {e.key for e in box.peek()}
    assert kept == {str(o.observation_id) for o in denied}
    assert forwarder.published == 1 and forwarder.refused == 3
    assert box.states()["queued"]["count"] == 3
    refusals = [r for r in caplog.records if "refused the publish" in r.getMessage()]
    assert len(refusals) == 1  # rate-limited: one line for three refusals
    assert "0x87" in refusals[0].getMessage() and refusals[0].levelno == logging.WARNING
    box.close()
