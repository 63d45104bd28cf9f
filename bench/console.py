"""Console benchmark: server time of each page for a site of N assets (default 1,000).

Seeds a fresh SQLite database (or ``--db URL``, empty) with one site of N PLCs in zones of
50 (identity, firmware, Modbus facts with evidence), signs in as an auditor and times each
console page in process (TestClient: the server's time, no network), median and worst of
``--repeat`` requests. Pages reuse the cached gap evaluation while the site is unchanged;
"first after an ingest" stores one new observation (untimed) before each request, so every
timed request evaluates the gap afresh. The issue's goal: ≤ 300 ms per page at 1,000 assets.

    .venv/bin/python bench/console.py [--assets 1000] [--repeat 5] [--db URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import header, table, update_results

SITE, PASSWORD = "plant-a", "a long bench password"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def seed(url: str, count: int) -> None:
    from otaudit.inventory import Inventory
    from otaudit.observation import AssetKind, AssetRef, Evidence, Fact, Observation, ProbeStatus
    from otaudit.server import store
    from otaudit.server.db import init_db, make_engine, session_factory
    from otaudit.server.ingest import Ingestor
    from otaudit.server.services import accounts

    engine = make_engine(url)
    init_db(engine)
    zones = [f"cell-{z}" for z in range((count + 49) // 50)]
    with session_factory(engine).begin() as session:
        store.upsert_zones(session, Inventory.model_validate(
            {"site": SITE, "zones": [{"id": z, "sl_t": 2} for z in zones]}))
        accounts.add_user(session, "auditor", PASSWORD, "bench")
        accounts.grant(session, "auditor", SITE, "auditor", "bench")
    messages = []
    for i in range(count):
        at = T0 + timedelta(seconds=i)
        facts = {"identity.vendor": "Schneider Electric", "identity.product": "BMX P34 2020",
                 "identity.firmware_version": f"3.{i % 30}",
                 "modbus.unauthenticated_read": i % 3 != 0}
        obs = Observation(
            observation_id=uuid.uuid4(), collector_id="c1", site=SITE,
            asset=AssetRef(id=f"plc-{i:04d}", kind=AssetKind.PLC, zone=zones[i // 50]),
            probe="modbus", probe_version="1", endpoint="127.0.0.1:502", started_at=at,
            finished_at=at + timedelta(seconds=1), status=ProbeStatus.OK,
            facts={k: Fact(value=v, evidence=["e1"]) for k, v in facts.items()},
            evidence=[Evidence(id="e1", request="read device id", excerpt="BMX P34 2020",
                               at=at)])
        messages.append((f"otaudit/v1/{SITE}/c1/obs/{obs.asset.id}", obs.to_json()))
    ingestor = Ingestor(engine)
    for start in range(0, len(messages), 200):
        ingestor.ingest(messages[start:start + 200])
    engine.dispose()


def new_observation(url: str, n: int) -> None:
    """One more observation of plc-0000: the next overview cannot reuse the cached gap."""
    from otaudit.observation import AssetKind, AssetRef, Fact, Observation, ProbeStatus
    from otaudit.server.db import make_engine
    from otaudit.server.ingest import Ingestor

    at = T0 + timedelta(days=1, seconds=n)
    obs = Observation(
        observation_id=uuid.uuid4(), collector_id="c1", site=SITE,
        asset=AssetRef(id="plc-0000", kind=AssetKind.PLC, zone="cell-0"), probe="modbus",
        probe_version="1", endpoint="127.0.0.1:502", started_at=at,
        finished_at=at + timedelta(seconds=1), status=ProbeStatus.OK,
        facts={"modbus.unauthenticated_read": Fact(value=n % 2 == 0, evidence=[])})
    engine = make_engine(url)
    Ingestor(engine).ingest([(f"otaudit/v1/{SITE}/c1/obs/plc-0000", obs.to_json())])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from otaudit.server.api import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        started = time.monotonic()
        seed(url, args.assets)
        seeded = time.monotonic() - started
        app = create_app(url)
        client = TestClient(app)
        client.post("/console/login", data={"username": "auditor", "password": PASSWORD})
        base = f"/console/sites/{SITE}"
        fresh = "sites overview, first after an ingest"
        pages = {"sites overview": "/console/sites", fresh: "/console/sites",
                 "zone": f"{base}/zones/cell-0",
                 "asset": f"{base}/assets/plc-0001", "findings (all)": f"{base}/findings",
                 "findings (filtered)": f"{base}/findings?outcome=capability_gap&zone=cell-1",
                 "findings CSV": f"{base}/findings?format=csv", "patch board": f"{base}/patches",
                 "risk register": f"{base}/risks"}
        rows = []
        for name, path in pages.items():
            times = []
            for n in range(args.repeat):
                if name == fresh:  # untimed: the ingest that invalidates the cached gap
                    new_observation(url, n)
                t = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            median = statistics.median(times)
            rows.append([name, f"{median:.0f}", f"{max(times):.0f}", len(response.content) // 1024,
                         "yes" if median <= 300 else "NO"])
        app.state.engine.dispose()
    text = table(["page", "median ms", "worst ms", "KiB", "≤ 300 ms"], rows)
    print(text)
    update_results("console", "## Console pages\n\n" + header({
        "data": f"one site, {args.assets} assets in zones of 50, "
                f"{'SQLite' if not args.db else args.db.split(':')[0]}; seeded in "
                f"{seeded:.1f} s"}) + "\n\n" + text)


if __name__ == "__main__":
    main()
