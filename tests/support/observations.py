"""Builders of observations for server tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from otaudit.observation import AssetKind, AssetRef, Evidence, Fact, Observation, ProbeStatus

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def make_observation(asset: str = "plc-1", *, probe: str = "modbus", zone: str = "cell-1",
                     kind: AssetKind = AssetKind.PLC, minutes: int = 0,
                     facts: dict[str, Any] | None = None, site: str = "plant-a",
                     collector: str = "c1", status: ProbeStatus = ProbeStatus.OK,
                     unknown: dict[str, str] | None = None) -> Observation:
    at = T0 + timedelta(minutes=minutes)
    evidence = [Evidence(id="e1", request="read identity", excerpt="...", at=at)]
    return Observation(
        observation_id=uuid.uuid4(), collector_id=collector, site=site,
        asset=AssetRef(id=asset, kind=kind, zone=zone), probe=probe, probe_version="1",
        endpoint="127.0.0.1:502", started_at=at, finished_at=at + timedelta(seconds=1),
        status=status, facts={k: Fact(value=v, evidence=["e1"]) for k, v in (facts or {}).items()},
        unknown=unknown or {}, evidence=evidence,
    )
