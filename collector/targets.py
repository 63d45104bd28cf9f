"""Turns an inventory into probe targets, validating each endpoint against its probe's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from otaudit.errors import InputError, pydantic_problems
from otaudit.inventory import (
    DEFAULT_SCHEDULE,
    Asset,
    Endpoint,
    Inventory,
    conduit_problems,
    load_inventory,
)
from otaudit.observation import AssetRef
from otaudit.probes import REGISTRY, UnknownProbe, probe_class
from otaudit.probes.base import Probe, ProbeTarget
from otaudit.yamlio import YamlDoc


@dataclass(frozen=True)
class AssetPlan:
    """Everything to audit on one asset, probed one endpoint at a time."""

    asset: Asset
    jobs: tuple[tuple[Probe, ProbeTarget], ...]


def plan_inventory(inventory: Inventory, doc: YamlDoc | None = None) -> list[AssetPlan]:
    """Validate every endpoint's options with its probe; one InputError lists all problems."""
    problems: list[str] = []
    plans = []
    for i, asset in enumerate(inventory.assets):
        ref = AssetRef(id=asset.id, kind=asset.kind, zone=asset.zone, name=asset.name)
        jobs = []
        for protocol, endpoint in asset.endpoints.items():
            loc: tuple[str | int, ...] = ("assets", i, "endpoints", protocol)
            where = f" ({doc.locate(loc)})" if doc and doc.locate(loc) else ""
            try:
                cls = probe_class(protocol)
            except UnknownProbe as exc:
                problems.append(f"assets.{i}.endpoints.{protocol}{where}: {exc.args[0]}")
                continue
            try:
                options = cls.Options.model_validate(endpoint.options)
            except ValidationError as exc:
                prefix = f"assets.{i}.endpoints.{protocol}."
                locate = (lambda sub, base=loc: doc.locate((*base, *sub))) if doc else None
                problems += [prefix + p for p in pydantic_problems(exc, locate)]
                continue
            target = ProbeTarget(asset=ref, host=endpoint.host,
                                 port=endpoint.port or cls.default_port, options=options,
                                 credential_checks=asset.credential_checks)
            jobs.append((cls(), target))
        if inventory.collector_zone is not None and inventory.conduits:
            from otaudit.collector.conduits import reach_job

            defaults = {p: probe_class(p).default_port for p in asset.endpoints
                        if p in REGISTRY}
            job = reach_job(inventory, asset, defaults)
            if job is not None:  # conduit verification, after the asset's own runs
                jobs.append(job)
        plans.append(AssetPlan(asset, tuple(jobs)))
    if problems:
        raise InputError(doc.source if doc else "inventory", problems)
    return plans


def load_plan(path: str | Path) -> tuple[Inventory, list[AssetPlan]]:
    inventory, doc = load_inventory(path)
    return inventory, plan_inventory(inventory, doc)


def inventory_problems(doc: YamlDoc) -> list[str]:
    """Every problem of an inventory in one pass: schema fields, references (zones,
    schedules, duplicate ids) and each endpoint's probe options, each with its line.

    ``load_plan`` stops at the first stage that fails; this goes on through all of them
    so that one run of ``otaudit inventory validate`` shows everything to fix.
    """
    data = doc.data
    if not isinstance(data, dict):
        return [f"{doc.source}: expected a mapping with 'site', 'zones' and 'assets'"]
    problems: list[str] = []
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        located = [e for e in exc.errors() if e.get("loc")]  # the references come below
        problems += pydantic_problems(_Errors(located), doc.locate)
        inventory = None
    problems += _reference_problems(data, doc)
    if inventory is not None:
        try:
            plan_inventory(inventory, doc)
        except InputError as exc:
            problems += exc.problems
    else:
        problems += _endpoint_problems(data, doc)
    return list(dict.fromkeys(problems))


class _Errors:
    """A ValidationError's ``errors()`` list, for ``pydantic_problems``."""

    def __init__(self, errors: list[Any]) -> None:
        self._errors = errors

    def errors(self) -> list[Any]:
        return self._errors


def _reference_problems(data: dict[str, Any], doc: YamlDoc) -> list[str]:
    def at(*loc: str | int) -> str:
        line = doc.locate(loc)
        return f" ({line})" if line else ""

    def ids(key: str) -> list[tuple[int, Any]]:
        items = data.get(key) if isinstance(data.get(key), list) else []
        return [(i, item.get("id")) for i, item in enumerate(items) if isinstance(item, dict)]

    problems: list[str] = []
    zones, schedules = ids("zones"), ids("schedules")
    for key, found in (("zones", zones), ("schedules", schedules), ("assets", ids("assets"))):
        seen: set[Any] = set()
        for i, ident in found:
            if ident in seen:
                problems.append(f"{key}.{i}.id{at(key, i, 'id')}: duplicate id {ident!r}")
            seen.add(ident)
    zone_ids = {z for _, z in zones}
    schedule_ids = {s for _, s in schedules} | {DEFAULT_SCHEDULE, None}
    for i, asset in enumerate(data.get("assets") or []):
        if not isinstance(asset, dict):
            continue
        if "zone" in asset and asset["zone"] not in zone_ids:
            problems.append(f"assets.{i}.zone{at('assets', i, 'zone')}: unknown zone "
                            f"{asset['zone']!r}; zones: {', '.join(map(str, zone_ids)) or '-'}")
        if asset.get("schedule") not in schedule_ids:
            problems.append(f"assets.{i}.schedule{at('assets', i, 'schedule')}: unknown "
                            f"schedule {asset['schedule']!r}")
    if data.get("collector_zone") is not None and data["collector_zone"] not in zone_ids:
        problems.append(f"collector_zone{at('collector_zone')}: unknown zone "
                        f"{data['collector_zone']!r}; zones: {', '.join(map(str, zone_ids))}")
    for loc, problem in conduit_problems(data):  # networks and conduits
        problems.append(f"{'.'.join(map(str, loc))}{at(*loc)}: {problem}")
    return problems


def _endpoint_problems(data: dict[str, Any], doc: YamlDoc) -> list[str]:
    """Probe options of every endpoint whose host part is valid, when the inventory as a
    whole is not (``plan_inventory`` needs a valid inventory)."""
    problems: list[str] = []
    for i, asset in enumerate(data.get("assets") or []):
        if not isinstance(asset, dict) or not isinstance(asset.get("endpoints"), dict):
            continue
        for protocol, raw in asset["endpoints"].items():
            loc: tuple[str | int, ...] = ("assets", i, "endpoints", protocol)
            where = f" ({doc.locate(loc)})" if doc.locate(loc) else ""
            try:
                cls = probe_class(protocol)
                endpoint = Endpoint.model_validate(raw)
            except UnknownProbe as exc:
                problems.append(f"assets.{i}.endpoints.{protocol}{where}: {exc.args[0]}")
                continue
            except ValidationError:
                continue  # already listed by the schema pass
            try:
                cls.Options.model_validate(endpoint.options)
            except ValidationError as exc:
                prefix = f"assets.{i}.endpoints.{protocol}."
                problems += [prefix + p for p in pydantic_problems(
                    exc, lambda sub, base=loc: doc.locate((*base, *sub)))]
    return problems
