"""Replay LibreNMS's real walks through our SNMP simulator, probe them, compare the identity.

The walks and LibreNMS's discovery result (the oracle) are GPL-3.0 and are read from
``../shared/fixtures/real/snmp-librenms`` only, never copied. Comparison rules (LibreNMS
trims, composes and relabels values, see that folder's README):

* values are compared after stripping quotes and whitespace, collapsing inner whitespace
  and ignoring case;
* they agree when equal, or when one is a whole-word part of the other (LibreNMS's
  ``hardware`` "Juniper EX3400-48T" vs our model "ex3400-48t", its ``version``
  "SW: L3E-09.1.03 CH: 1.04 BP: 101" vs our firmware "L3E-09.1.03"); a leading ``v`` of a
  version word is ignored;
* ``vendor`` is compared with identity.vendor, ``hardware`` with identity.model,
  ``version`` with identity.firmware_version (hosts: identity.os), ``serial`` with
  identity.serial (equality only).

Every disagreement must be listed in ``librenms_disagreements.yaml`` with its reason.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path("fixtures/real/snmp-librenms")
DISAGREEMENTS = Path(__file__).with_name("librenms_disagreements.yaml")
FIELDS = {"vendor": ("identity.vendor",), "hardware": ("identity.model",),
          "version": ("identity.firmware_version", "identity.os"),
          "serial": ("identity.serial",)}
CONCURRENCY = 6  # walks probed at once (each mostly waits on a confirmed silence)
REPORTS: list[str] = []  # agreement tables of this session, printed by conftest.py
_SPLIT = re.compile(r"[\s,/()\[\]:;]+")


def normalise(value: Any) -> str:
    text = str(value).strip().strip('"').strip("\\").strip('"').strip()
    return re.sub(r"\s+", " ", text).casefold()


def _words(text: str) -> list[str]:
    return [w[1:] if re.fullmatch(r"v\d[\w.-]*", w) else w for w in _SPLIT.split(text) if w]


def _contains(outer: list[str], inner: list[str]) -> bool:
    n = len(inner)
    return n > 0 and any(outer[i:i + n] == inner for i in range(len(outer) - n + 1))


def agree(name: str, oracle: Any, ours: Any) -> bool:
    if ours is None:
        return False
    a, b = normalise(oracle), normalise(ours)
    if a == b:
        return True
    if name == "serial" or len(b) < 2:
        return False
    wa, wb = _words(a), _words(b)
    return wa == wb or _contains(wa, wb) or _contains(wb, wa)


@dataclass
class Outcome:
    file: str
    status: str
    reason: str | None
    facts: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    compared: dict[str, tuple[Any, Any, bool]] = field(default_factory=dict)


def oracle_rows(shared_dir: Path) -> list[dict[str, Any]]:
    path = shared_dir / CORPUS / "expected.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(row: dict[str, Any], facts: dict[str, Any]) -> dict[str, tuple[Any, Any, bool]]:
    """field -> (oracle value, our value, agree) for every field the oracle has."""
    out = {}
    for name, paths in FIELDS.items():
        oracle = row.get(name)
        if oracle in (None, ""):
            continue
        candidates = [facts.get(p) for p in paths if facts.get(p) is not None]
        match = next((c for c in candidates if agree(name, oracle, c)), None)
        ours = match if match is not None else (candidates[0] if candidates else None)
        out[name] = (oracle, ours, match is not None)
    return out


async def _probe_one(row: dict[str, Any], folder: Path, semaphore: asyncio.Semaphore,
                     probe: Any) -> Outcome:
    from otaudit.simulators.snmp.device import SnmpSimulator, recording_profile
    from otaudit.simulators.snmp.recordings import read_recording

    path = folder / row["file"]
    notes = read_recording(path).notes()
    async with semaphore:
        sim = SnmpSimulator(recording_profile(path, "public", skip_bad_lines=True))
        async with sim:
            obs = await probe(sim.port)
    facts = {p: f.value for p, f in obs.facts.items()}
    return Outcome(row["file"], obs.status.value, obs.reason, facts, notes, compare(row, facts))


async def run_corpus(shared_dir: Path, probe: Any) -> list[Outcome]:
    """Every walk replayed and probed (``probe(port) -> Observation``), in corpus order."""
    folder = shared_dir / CORPUS
    semaphore = asyncio.Semaphore(CONCURRENCY)
    rows = oracle_rows(shared_dir)
    return list(await asyncio.gather(*(_probe_one(r, folder, semaphore, probe) for r in rows)))


def load_disagreements() -> dict[tuple[str, str], dict[str, Any]]:
    data = yaml.safe_load(DISAGREEMENTS.read_text()) or []
    return {(d["file"], d["field"]): d for d in data}


def agreement_table(outcomes: list[Outcome]) -> str:
    """Per field: oracle values present, agreeing, explained; then every disagreement."""
    explained = load_disagreements()
    lines = [f"{'field':<10} {'present':>7} {'agree':>6} {'explained':>9} {'rate':>7}"]
    total = agreeing = 0
    for name in FIELDS:
        rows = [o.compared[name] for o in outcomes if name in o.compared]
        ok = sum(1 for _, _, a in rows if a)
        listed = sum(1 for o in outcomes if name in o.compared and not o.compared[name][2]
                     and (o.file, name) in explained)
        total, agreeing = total + len(rows), agreeing + ok
        rate = ok / len(rows) if rows else 1.0
        lines.append(f"{name:<10} {len(rows):>7} {ok:>6} {listed:>9} {rate:>7.1%}")
    rate = agreeing / total if total else 1.0
    lines.append(f"{'all':<10} {total:>7} {agreeing:>6} {'':>9} {rate:>7.1%}")
    lines.append("")
    lines.append("disagreements (oracle | otaudit | reason):")
    for o in outcomes:
        for name, (oracle, ours, ok) in o.compared.items():
            if not ok:
                reason = explained.get((o.file, name), {}).get("reason", "NOT EXPLAINED")
                lines.append(f"  {o.file[:-8]} {name}: {oracle!r} | {ours!r} | {reason}")
    return "\n".join(lines)
