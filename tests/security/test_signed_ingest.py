"""Signed envelopes through the real server path: ``serve`` + ``Ingestor(verifier=…)``.

The broker is a private Mosquitto with TLS client certificates (CN = identity) and the shipped
ACL, on SQLite and PostgreSQL. Forged, unsigned, tampered and replayed envelopes are rejected
and kept in ``rejected_messages`` with their reason; only the genuine ones are stored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiomqtt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from security_pki import CertificateAuthority, acl_example, keep_user, tls_listener_config

from otaudit.mqtt import client_kwargs
from otaudit.observation import Observation
from otaudit.server.db import ObservationRow, RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.server.signing_state import CollectorSequence
from otaudit.settings import Settings
from otaudit.signing import Signer, Verifier, public_pem, write_enrolment

from support.observations import make_observation

pytestmark = pytest.mark.mosquitto


def enrol(folder: Path, *collectors: str) -> dict[str, Signer]:
    folder.mkdir(exist_ok=True)
    signers = {}
    for collector in collectors:
        key = Ed25519PrivateKey.generate()
        (folder / f"{collector}.pub").write_bytes(public_pem(key.public_key()))
        write_enrolment(folder / f"{collector}.scope", ["*"], ["*"])  # any site, any asset
        signers[collector] = Signer(key, collector)
    return signers


def changed(obs: Observation, **facts: object) -> Observation:
    """The same observation (same id) with other fact values."""
    data = json.loads(obs.to_json())
    for path, value in facts.items():
        data["facts"][path]["value"] = value
    return Observation.model_validate(data)


async def test_forged_envelopes_are_rejected_with_reason_through_the_server(
        tmp_path: Path, mosquitto_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    prefix = f"otaudit-sig{uuid.uuid4().hex[:6]}/v1"
    ca = CertificateAuthority.create(tmp_path / "pki", "plant")
    acl = tmp_path / "acl"
    acl.write_text(acl_example(prefix))
    broker = mosquitto_factory(keep_user() + tls_listener_config(ca)
                               + f"allow_anonymous false\nacl_file {acl}\n")
    broker.start()
    url = f"mqtts://127.0.0.1:{broker.port}"

    def identity(name: str) -> Settings:
        cert, key = ca.issue(name)
        return Settings(_env_file=None, broker_url=url, topic_prefix=prefix,
                        mqtt_ca_file=str(ca.cert_file), mqtt_client_cert=str(cert),
                        mqtt_client_key=str(key), server_client_id=f"srv-{uuid.uuid4().hex[:6]}")

    signers = enrol(tmp_path / "trusted", "c1", "c2")
    c1 = signers["c1"]
    rogue_key = Ed25519PrivateKey.generate()
    c9 = Signer(Ed25519PrivateKey.generate(), "c9")  # has a broker identity, no enrolled key

    def obs(asset: str, collector: str = "c1") -> Observation:
        return make_observation(site="s1", collector=collector, asset=asset,
                                facts={"identity.firmware_version": "4.2.1"})

    first, second, last = obs("plc-1"), obs("plc-2"), obs("plc-3")
    good = c1.sign(first, 1)
    tampered = c1.envelope(second, 2)
    tampered["observation"]["facts"]["identity.firmware_version"]["value"] = "9.9.9"
    forged = Signer(rogue_key, "c1").envelope(obs("plc-4"), 3) | {"key_id": c1.key_id}
    c1_messages = [
        ("plc-1", good),                                            # stored
        ("plc-1", good),                                            # QoS-1 duplicate
        ("plc-2", json.dumps(tampered).encode()),                   # bad_signature
        ("plc-4", json.dumps(forged).encode()),                     # bad_signature
        ("plc-5", Signer(rogue_key, "c1").sign(obs("plc-5"), 4)),   # unknown_key
        ("plc-1", c1.sign(changed(first, **{"identity.firmware_version": "0.0.1"}), 5)),  # replay
        ("plc-6", c1.sign(obs("plc-6"), 1)),                        # replay: seq 1 reused
        ("plc-7", obs("plc-7").to_json()),                          # unsigned
        ("plc-3", c1.sign(last, 6)),                                # stored
    ]

    engine = make_engine(database_url)
    init_db(engine)
    server = identity("otaudit-server")
    verifier = Verifier.from_dir(tmp_path / "trusted")
    ingestor = Ingestor(engine, topic_prefix=prefix, verifier=verifier)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(ingestor, server, ready=ready, stop=stop, stats=stats))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        async with aiomqtt.Client(**client_kwargs(identity("c1"))) as pub:
            for asset, payload in c1_messages:
                await pub.publish(f"{prefix}/s1/c1/obs/{asset}", payload, qos=1)
        async with aiomqtt.Client(**client_kwargs(identity("c9"))) as pub:
            await pub.publish(f"{prefix}/s1/c9/obs/plc-9", c9.sign(obs("plc-9", "c9"), 1), qos=1)
        async with aiomqtt.Client(**client_kwargs(identity("c2"))) as pub:  # relays c1's envelope
            await pub.publish(f"{prefix}/s1/c2/obs/plc-1", good, qos=1)
        async with asyncio.timeout(15):
            while stats.stored + stats.duplicates + stats.rejected < 11:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert (stats.stored, stats.duplicates, stats.rejected) == (2, 1, 8)

    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(sa.select(RejectedMessage.reason))]
        stored = {oid: payload for oid, payload in conn.execute(
            sa.select(ObservationRow.observation_id, ObservationRow.payload))}
        sequences = set(conn.execute(sa.select(CollectorSequence.collector_id,
                                               CollectorSequence.seq)))
    engine.dispose()
    codes = sorted(reason.split(":", 1)[0] for reason in reasons)
    assert codes == ["bad_signature", "bad_signature", "collector_mismatch", "replay", "replay",
                     "unknown_collector", "unknown_key", "unsigned"], reasons
    assert any("seq 1 of collector 'c1' was already accepted" in r for r in reasons)
    assert any(f"observation {first.observation_id} is already stored" in r for r in reasons)
    assert any("no public key enrolled for collector 'c9'" in r for r in reasons)
    assert set(stored) == {str(first.observation_id), str(last.observation_id)}
    kept = stored[str(first.observation_id)]["facts"]["identity.firmware_version"]
    assert kept["value"] == "4.2.1"
    assert sequences == {("c1", 1), ("c1", 6)}


def test_without_verifier_plain_json_is_accepted_and_optional_mode_is_per_collector(
        tmp_path: Path, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    signers = enrol(tmp_path / "trusted", "c1")
    topic = "otaudit/v1/s1/{}/obs/{}".format
    plain_c7 = make_observation(site="s1", collector="c7", asset="hmi-7")
    plain_c1 = make_observation(site="s1", collector="c1", asset="plc-1")
    signed_c1 = make_observation(site="s1", collector="c1", asset="plc-2")

    # No verifier: the lead's plain JSON contract; an envelope is not an observation.
    result = Ingestor(engine).ingest([(topic("c7", "hmi-7"), plain_c7.to_json()),
                                      (topic("c1", "plc-2"), signers["c1"].sign(signed_c1, 1))])
    assert (result.stored, result.rejected) == (1, 1)

    # Optional signatures (migration): unsigned only from collectors without an enrolled key.
    optional = Ingestor(engine, verifier=Verifier.from_dir(tmp_path / "trusted", required=False))
    again = make_observation(site="s1", collector="c7", asset="hmi-7", minutes=5)
    result = optional.ingest([(topic("c7", "hmi-7"), again.to_json()),
                              (topic("c1", "plc-1"), plain_c1.to_json()),
                              (topic("c1", "plc-2"), signers["c1"].sign(signed_c1, 1))])
    assert (result.stored, result.duplicates, result.rejected) == (2, 0, 1)
    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(sa.select(RejectedMessage.reason)
                                              .order_by(RejectedMessage.id))]
    assert reasons[0].startswith("invalid observation")
    assert reasons[1].startswith("unsigned:")
    engine.dispose()
