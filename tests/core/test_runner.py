"""run_probe turns every way a probe can end into an observation status, never an exception."""

from __future__ import annotations

import asyncio

import pytest

from otaudit.observation import AssetKind, AssetRef, Observation, ProbeStatus
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe

from support.fake_probe import FakeOptions, FakeProbe

SECRET = "s3cr3t-Pa55"


async def run(behaviour: str, deadline: float = 2.0, **opts: object) -> Observation:
    target = ProbeTarget(asset=AssetRef(id="a1", kind=AssetKind.PLC, zone="z"),
                         host="127.0.0.1", port=9,
                         options=FakeOptions(behaviour=behaviour, **opts))
    return await run_probe(FakeProbe(), target, collector_id="c", site="s", deadline=deadline)


async def test_ok_run_records_facts_with_evidence() -> None:
    obs = await run("ok")
    assert obs.status is ProbeStatus.OK and obs.reason is None
    fact = obs.facts["identity.firmware_version"]
    assert fact.value == "V1.2.3"
    assert fact.evidence == ["e1"] and obs.evidence[0].request == "fake identify"
    assert obs.unknown == {}


async def test_partial_run_lists_missing_facts_as_unknown_with_reason() -> None:
    obs = await run("partial")
    assert obs.status is ProbeStatus.OK
    assert obs.unknown["identity.firmware_version"] == "device hid it"
    assert obs.unknown["fake.login"] == "not reported by the device"


@pytest.mark.parametrize(("behaviour", "status", "reason"), [
    ("crash", ProbeStatus.ERROR, "probe failure: KeyError"),
    ("refused", ProbeStatus.REFUSED, "device refused login"),
    ("auth", ProbeStatus.AUTH_FAILED, "wrong password"),
    ("parse", ProbeStatus.ERROR, "malformed reply: byte 3"),
    ("oserror", ProbeStatus.ERROR, "network error"),
])
async def test_failures_become_statuses(behaviour: str, status: ProbeStatus, reason: str) -> None:
    obs = await run(behaviour)
    assert obs.status is status
    assert reason in (obs.reason or "")
    assert "identity.firmware_version" in obs.unknown
    assert "identity.vendor" in obs.facts  # what was read before the failure is kept


async def test_hanging_device_times_out_within_deadline() -> None:
    obs = await run("hang", deadline=0.2)
    assert obs.status is ProbeStatus.TIMEOUT
    assert (obs.finished_at - obs.started_at).total_seconds() < 1.0


async def test_a_cancelled_error_subclass_at_the_deadline_is_a_timeout() -> None:
    """asyncio.timeout converts only an exact CancelledError; asyncua's wait_for2 raises a
    subclass when the reply races the deadline: the run ended without an observation."""
    obs = await run("hang_racing", deadline=0.2)
    assert obs.status is ProbeStatus.TIMEOUT and "0.2 s" in (obs.reason or "")


@pytest.mark.parametrize("behaviour", ["hang", "hang_racing"])
async def test_cancelling_the_run_itself_still_cancels_it(behaviour: str) -> None:
    task = asyncio.create_task(run(behaviour, deadline=30))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_cancel_arriving_as_the_deadline_runs_out_is_not_swallowed() -> None:
    """Both at once: the collector stopping must win over the run's timeout status."""
    async def cancelled_at_deadline() -> Observation:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.call_later(0.2, task.cancel)  # the same moment the 0.2 s deadline ends
        return await run("hang_racing", deadline=0.2)

    task = asyncio.create_task(cancelled_at_deadline())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_secret_never_reaches_the_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PASSWORD", SECRET)
    for behaviour in ("ok", "refused"):
        obs = await run(behaviour, password={"env": "FAKE_PASSWORD"})
        assert SECRET not in obs.model_dump_json()
    assert (await run("ok", password={"env": "FAKE_PASSWORD"})).fact("fake.login") is True


async def test_missing_secret_fails_the_run_naming_the_reference() -> None:
    obs = await run("ok", password={"env": "OTAUDIT_TEST_UNSET_VARIABLE"})
    assert obs.status is ProbeStatus.ERROR
    assert "env:OTAUDIT_TEST_UNSET_VARIABLE" in (obs.reason or "")


def test_observation_round_trips_and_rejects_bad_fact_paths() -> None:
    import asyncio

    from pydantic import ValidationError

    obs = asyncio.run(run("ok"))
    assert Observation.from_json(obs.to_json()) == obs
    data = obs.model_dump(mode="json")
    data["facts"]["Bad Path"] = {"value": 1, "evidence": []}
    with pytest.raises(ValidationError, match=r"family\.name"):
        Observation.model_validate(data)
