"""One audit pass over the inventory: bounded concurrency, one connection per device."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from otaudit.collector.targets import AssetPlan
from otaudit.probes.runner import run_probe

from otaudit.observation import Observation
from otaudit.settings import Settings

log = logging.getLogger(__name__)

Sink = Callable[[Observation], Awaitable[None]]


@dataclass
class RunSummary:
    observations: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    published: int = 0
    publish_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.publish_errors


async def audit_assets(plans: Sequence[AssetPlan], sink: Sink, *, settings: Settings,
                       site: str, collector: str,
                       progress: Callable[[Observation], None] | None = None) -> RunSummary:
    """Probe every asset once and hand each observation to ``sink`` as soon as it exists.

    Endpoints of one asset are probed one after the other (one connection per device);
    at most ``settings.concurrency`` devices are audited at the same time.
    """
    summary = RunSummary()
    limit = asyncio.Semaphore(max(1, settings.concurrency))

    async def audit(plan: AssetPlan) -> None:
        async with limit:
            for probe, target in plan.jobs:
                obs = await run_probe(probe, target, collector_id=collector, site=site,
                                      deadline=settings.probe_timeout,
                                      min_interval=settings.min_request_interval)
                summary.observations += 1
                summary.by_status[obs.status.value] += 1
                if progress:
                    progress(obs)
                await sink(obs)

    async with asyncio.TaskGroup() as tg:
        for plan in plans:
            tg.create_task(audit(plan))
    return summary
