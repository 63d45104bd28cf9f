"""Turns an inventory into probe targets, validating each endpoint against its probe's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from otaudit.errors import InputError, pydantic_problems
from otaudit.inventory import Asset, Inventory, load_inventory
from otaudit.observation import AssetRef
from otaudit.probes import UnknownProbe, probe_class
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
        plans.append(AssetPlan(asset, tuple(jobs)))
    if problems:
        raise InputError(doc.source if doc else "inventory", problems)
    return plans


def load_plan(path: str | Path) -> tuple[Inventory, list[AssetPlan]]:
    inventory, doc = load_inventory(path)
    return inventory, plan_inventory(inventory, doc)
