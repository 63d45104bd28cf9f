"""End-to-end receipts through the real server (``serve`` in-process, SQLite) and Mosquitto.

An outbox entry is queued, then sent awaiting receipt after the broker's PUBACK, and leaves
only when the server's receipt names it; a rejected one is quarantined; receipts may be
signed; the seq of a restored outbox copy does not go backwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import uuid
from pathlib import Path

import aiomqtt
import pytest
from collector_support import fake_asset, fake_probes, private_state_dir  # noqa: F401
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.forwarder import Forwarder, ReceiptsMissing
from otaudit.collector.once import run_once
from otaudit.collector.outbox import Outbox, digest_of
from otaudit.collector.publisher import ObservationStore, load_receipt_verifier
from otaudit.collector.targets import load_plan
from otaudit.mqtt import observation_topic, receipt_topic
from otaudit.observation import Observation
from otaudit.receipt import Receipt, encode
from otaudit.settings import Settings
from otaudit.signing import Signer, Verifier, private_pem, public_pem, write_enrolment

from support.observations import make_observation
from support.server import running_server, until

pytestmark = pytest.mark.mosquitto


def private(**extra: object) -> Settings:
    """A private topic prefix on the shared broker: no other test's server receipts ours."""
    values: dict[str, object] = {"broker_url": "mqtt://127.0.0.1:1883",
                                 "topic_prefix": f"otaudit-r{uuid.uuid4().hex[:8]}/v1",
                                 "server_client_id": f"srv-{uuid.uuid4().hex[:8]}", **extra}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def fill(box: Outbox, settings: Settings, count: int, site: str = "s1",
         signer: Signer | None = None) -> list[Observation]:
    observations = [make_observation(site=site, collector="c1", asset=f"plc-{i}")
                    for i in range(count)]
    for obs in observations:
        topic = observation_topic(settings.topic_prefix, site, "c1", obs.asset.id)
        box.append(str(obs.observation_id), topic,
                   (lambda seq, o=obs: signer.sign(o, seq)) if signer else obs.to_json())
    return observations


async def test_an_entry_waits_for_its_receipt_and_is_published_again_without_one(
        tmp_path: Path, sqlite_url: str) -> None:
    settings = private(receipt_timeout=0.3, receipt_max_delay=0.6)
    box = Outbox(tmp_path / "outbox.db", max_entries=100, max_bytes=10**7)
    observations = fill(box, settings, 5)
    forwarder = Forwarder(box, settings, client_id=f"c1-{uuid.uuid4().hex[:6]}",
                          receipts_for=("s1", "c1"))
    running = asyncio.create_task(forwarder.run(), name="forwarder")
    try:  # no server yet: the broker acknowledges, nobody receipts
        await until(lambda: forwarder.published >= 5 and box.states()["sent"]["count"] == 5,
                    10, "5 acknowledged publishes", running)
        states = box.states()
        assert states["queued"]["count"] == 0 and box.entries == 5
        assert states["sent"]["oldest_age"] >= 0 and states["receipted"] == 0
        await until(lambda: forwarder.republished >= 5, 10, "re-publishes", running)
        async with running_server(settings, sqlite_url) as server:
            await until(lambda: box.entries == 0, 15, "the receipts", running, server.task)
            assert sorted(server.stored_ids()) == sorted(str(o.observation_id)
                                                         for o in observations)
    finally:
        await forwarder.close(1)
        await running
    assert forwarder.receipted == 5 and box.states()["receipted"] == 5
    assert server.stats.stored == 5 and server.stats.receipts >= 1
    box.close()


async def test_a_rejected_message_is_receipted_and_quarantined_not_re_sent(
        tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = private(receipt_timeout=0.3)
    keys = tmp_path / "keys"
    keys.mkdir()
    key = Ed25519PrivateKey.generate()
    (keys / "c1.pub").write_bytes(public_pem(key.public_key()))
    write_enrolment(keys / "c1.scope", ["s1"], ["*"])  # enrolled for its site
    box = Outbox(tmp_path / "outbox.db", max_entries=100, max_bytes=10**7)
    signed = fill(box, settings, 2, signer=Signer(key, "c1"))
    unsigned = fill(box, settings, 1)  # the server requires signatures from c1
    caplog.set_level(logging.WARNING, logger="otaudit.collector")
    async with running_server(settings, sqlite_url,
                              verifier=Verifier.from_dir(keys)) as server:
        forwarder = Forwarder(box, settings, client_id=f"c1-{uuid.uuid4().hex[:6]}",
                              receipts_for=("s1", "c1"))
        forwarder.finish(max_failures=3)
        await asyncio.wait_for(forwarder.run(), 20)
        stored = server.stored_ids()
        rejected = server.rejected_reasons()
    assert sorted(stored) == sorted(str(o.observation_id) for o in signed)
    assert len(rejected) == 1 and rejected[0].startswith("unsigned:")
    assert box.entries == 0 and forwarder.receipted == 2 and forwarder.rejected == 1
    assert forwarder.republished == 0  # the rejected one was not sent again
    [item] = box.quarantined()
    assert item["key"] == str(unsigned[0].observation_id)
    assert item["reason"].startswith("unsigned:")
    states = box.states()
    assert (states["rejected"], states["quarantined"], states["receipted"]) == (1, 1, 2)
    assert any("the server rejected observation" in r.getMessage()
               and r.levelno == logging.WARNING for r in caplog.records)
    box.close()


async def test_signed_receipts_are_required_once_the_server_key_is_configured(
        tmp_path: Path, sqlite_url: str) -> None:
    server_key, other_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    key_file, public_file, wrong_file = (tmp_path / n for n in ("srv.key", "srv.pub", "x.pub"))
    key_file.write_bytes(private_pem(server_key))
    key_file.chmod(0o600)
    public_file.write_bytes(public_pem(server_key.public_key()))
    wrong_file.write_bytes(public_pem(other_key.public_key()))
    settings = private(receipt_timeout=30, receipt_signing_key_file=str(key_file))
    async with running_server(settings, sqlite_url) as server:
        for public, expect_receipted in ((wrong_file, False), (public_file, True)):
            collector = settings.model_copy(update={"receipt_public_key_file": str(public)})
            box = Outbox(tmp_path / f"{public.stem}.db", max_entries=10, max_bytes=10**6)
            fill(box, settings, 2)
            forwarder = Forwarder(box, collector, client_id=f"c1-{uuid.uuid4().hex[:6]}",
                                  receipts_for=("s1", "c1"),
                                  receipt_verifier=load_receipt_verifier(collector))
            running = asyncio.create_task(forwarder.run(), name="forwarder")
            try:
                if expect_receipted:
                    await until(lambda b=box: b.entries == 0, 10, "the receipt", running)
                else:
                    await until(lambda f=forwarder: f.bad_receipts >= 1, 10, "a receipt",
                                running)
                    # an unsigned receipt forged on the topic is ignored just the same
                    forged = encode(Receipt("s1", "c1", "x", committed=[
                        e.key for e in box.peek()]))
                    async with aiomqtt.Client("127.0.0.1", 1883) as rogue:
                        await rogue.publish(receipt_topic(settings.topic_prefix, "s1", "c1"),
                                            forged, qos=1)
                    await until(lambda f=forwarder: f.bad_receipts >= 2, 10, "the forgery",
                                running)
                    assert box.entries == 2 and forwarder.receipted == 0
            finally:
                await forwarder.close(1)
                await running
            box.close()
    assert server.stats.stored == 4


async def test_a_restored_older_outbox_copy_never_reuses_a_seq(
        tmp_path: Path, sqlite_url: str) -> None:
    """The counter of a restored copy is behind the seqs the server has seen; before, every
    new observation was then rejected as a ``replay``."""
    settings = private(receipt_timeout=30)
    keys = tmp_path / "keys"
    keys.mkdir()
    key = Ed25519PrivateKey.generate()
    (keys / "c1.pub").write_bytes(public_pem(key.public_key()))
    write_enrolment(keys / "c1.scope", ["s1"], ["*"])  # enrolled for its site
    signer, path = Signer(key, "c1"), tmp_path / "outbox.db"

    async def deliver(count: int) -> list[Observation]:
        box = Outbox(path, max_entries=100, max_bytes=10**7)
        made = fill(box, settings, count, signer=signer)
        forwarder = Forwarder(box, settings, client_id=f"c1-{uuid.uuid4().hex[:6]}",
                              receipts_for=("s1", "c1"))
        forwarder.finish(max_failures=3)
        await asyncio.wait_for(forwarder.run(), 20)
        box.close()
        return made

    async with running_server(settings, sqlite_url,
                              verifier=Verifier.from_dir(keys)) as server:
        first = await deliver(2)
        shutil.copy(path, tmp_path / "backup.db")  # the backup: 2 seqs used
        second = await deliver(3)
        shutil.copy(tmp_path / "backup.db", path)  # restored: its counter is 3 seqs behind
        third = await deliver(3)
        stored, rejected = server.stored_ids(), server.rejected_reasons()
    assert rejected == []
    assert sorted(stored) == sorted(str(o.observation_id) for o in first + second + third)


async def test_once_waits_for_the_receipts_and_says_when_none_come(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = private(once_receipt_wait=1.0, receipt_timeout=0.2)
    site = f"once-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "inv.yaml"
    path.write_text(json.dumps({"site": site, "collector": "c1", "zones": [
        {"id": "z1", "sl_t": 2}], "assets": [fake_asset("a0"), fake_asset("a1", port=10)]}))
    inventory, plans = load_plan(path)
    with pytest.raises(ReceiptsMissing, match="did not confirm the published observations "
                                              "within 1 s"):
        await run_once(inventory, plans, settings)  # no server
    box = Outbox.open(Settings(), "c1")
    assert box.entries == 2 and box.states()["sent"]["count"] == 2
    box.close()
    async with running_server(settings, sqlite_url) as server:
        summary = await run_once(inventory, plans, settings)
        assert summary.published == 4  # the two kept ones and the two new ones, receipted
        assert len(server.stored_ids(site)) == 4
    monkeypatch.setenv("OTAUDIT_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("OTAUDIT_ONCE_RECEIPT_WAIT", "0.5")
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "collector", "run", "-i", str(path), "--once"])
    assert result.exit_code == 4
    assert "did not confirm the published observations within 0.5 s" in result.output
    status = CliRunner().invoke(app, ["collector", "status", "-i", str(path), "--json"])
    data = json.loads(status.output)
    assert data["sent"]["count"] == 2 and data["receipted"] == 4


def test_a_receipt_settles_by_id_and_a_rejection_only_by_the_exact_payload(
        tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=10**6)
    settings = private()
    a, b, c = fill(box, settings, 3)
    forged = b.model_copy(update={"probe": "forged"}).to_json()  # b's id, other bytes
    settled = box.settle([str(a.observation_id), "not-ours"],
                         [(digest_of(forged), "bad_signature: forged")])
    assert [e.key for e in settled.committed] == [str(a.observation_id)]
    assert settled.rejected == [] and box.entries == 2  # b survives the forgery's rejection
    own = next(e for e in box.peek() if e.key == str(c.observation_id))
    settled = box.settle([], [(own.digest or "", "invalid_observation: x")])
    assert [e.key for e, _ in settled.rejected] == [str(c.observation_id)]
    assert box.entries == 1 and box.states()["quarantined"] == 1
    box.close()


def test_seq_is_above_the_last_and_the_clock_even_when_the_clock_goes_back(
        tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    box = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=10**6, clock=lambda: now[0])
    first = box.append("a", "t", b"1")
    assert first == 1_800_000_000_000_000
    now[0] -= 3600  # NTP steps the clock back an hour
    assert box.append("b", "t", b"2") == first + 1
    now[0] += 7200
    assert box.append("c", "t", b"3") == 1_800_003_600_000_000
    box.close()


async def test_observation_store_holds_observations_while_the_disk_is_full(
        tmp_path: Path) -> None:
    """Unit part of the disk-full fault test: SQLite's max_page_count as the size limit."""
    box = Outbox(tmp_path / "o.db", max_entries=1000, max_bytes=10**8, reserve_bytes=0)
    box._db.execute("PRAGMA max_page_count = 40")
    store = ObservationStore(box, private(), "s1", "c1")
    stored = 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.5):
            while True:
                await store(make_observation(site="s1", collector="c1",
                                             facts={"identity.vendor": "x" * 2000}))
                stored += 1
    assert box.disk_full and store.held == 0 and box.entries == stored > 3
    assert box._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    box.close()


async def test_the_reconnect_backoff_starts_over_after_a_connection_that_worked(
        tmp_path: Path, mosquitto_factory) -> None:  # type: ignore[no-untyped-def]
    """Before, the delay stayed at its maximum after the first outage (24-27 s to reconnect
    after every later one)."""
    import random

    broker = mosquitto_factory()
    settings = private(broker_url=broker.url, receipts=False, reconnect_min_delay=0.1,
                       reconnect_max_delay=0.8)
    box = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=10**6)
    forwarder = Forwarder(box, settings, client_id="c1-backoff", rng=random.Random(7))
    running = asyncio.create_task(forwarder.run(), name="forwarder")
    try:
        await until(lambda: len(forwarder.delays) >= 5, 20, "the backoff to grow", running)
        assert forwarder.delays[4] >= 0.8 * 0.8  # doubled up to the maximum
        broker.start()
        await until(lambda: forwarder.connected, 10, "the connection", running)
        before = len(forwarder.delays)
        broker.stop(kill=True)
        await until(lambda: len(forwarder.delays) > before, 10, "the next pause", running)
        assert forwarder.delays[before] <= 0.1 * 1.2  # back to the minimum
        broker.start()
        await until(lambda: forwarder.connected, 10, "the reconnection", running)
    finally:
        await forwarder.close(1)
        await running
    box.close()
