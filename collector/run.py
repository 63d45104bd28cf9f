"""One audit pass over some assets, politely: the rules that protect the plant live here.

- at most ``concurrency`` probe runs at a time, over every schedule (``DeviceGuard``); the
  assets with the longest expected runs start first (``Probe.typical_seconds``), so that
  long audits and devices that never answer do not all end up at the end of a pass;
- one probe run at a time per device and per asset (an asset's endpoints one after the
  other; assets behind one endpoint, e.g. units of a gateway, one after the other);
- at least ``device_min_interval`` between two probe runs on one device (requests inside
  a run are paced by the probe itself, ``ctx.pace()``);
- a transient failure (timeout, network error, connection refused) is retried after a
  backoff that doubles; the published observation is the last attempt's, listing the
  earlier attempts under ``errors``. Authentication failures are never retried;
- before each probe run: wait while the outbox is full (then reserve the entry of its
  observation), and stop when the run is no longer allowed (shutdown, maintenance window
  closed). Runs in flight always finish and store their observation.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from otaudit.collector.clock import Clock, SystemClock
from otaudit.collector.outbox import Backpressure
from otaudit.collector.targets import AssetPlan
from otaudit.observation import Observation, ProbeStatus
from otaudit.probes.base import Probe, ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.settings import Settings

log = logging.getLogger(__name__)

Sink = Callable[[Observation], Awaitable[None]]
# A finished probe run leaves reference cycles (client <-> transport <-> callbacks, the
# recorder's facts): it lived through a few young collections, so only a full collection
# frees it, and Python's own trigger for those waits for 25 % more long-lived objects. In
# a Modbus zone of 300 that was ~20,000 objects (~6 MiB) at the peak; one full collection
# every GC_EVERY finished runs costs a few ms each.
GC_EVERY = 32


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``; False where there is no glibc).

    glibc gives each thread that allocates an arena of its own (up to 8 per core) and rarely
    returns their fragmented pages; the WinRM probe does its HTTP/TLS work in worker threads
    (WinRM fuzz campaign, 311 runs, same seed: RSS 95 → 123 MiB uncapped, 93 → 116 capped).
    Call before the first worker thread starts; what the cap costs is some lock contention
    between threads that allocate at once, which a collector (one event loop, a few I/O
    threads) barely has.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def freeze_startup_heap() -> None:
    """Move what start-up built (modules, the plan) out of the garbage collector's sight
    (``gc.freeze``): the full collections of ``audit_assets`` then walk only what the
    probe runs allocate. Call once, after planning (what is frozen is never freed: the
    daemon's first plan outlives a reload)."""
    gc.collect()
    gc.freeze()


@dataclass
class RunSummary:
    observations: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    published: int = 0
    publish_errors: list[str] = field(default_factory=list)
    retries: int = 0
    skipped: int = 0  # probe runs not started (shutdown, window closed)

    @property
    def ok(self) -> bool:
        return not self.publish_errors


@dataclass
class AuditControl:
    """What may stop or hold an audit between two probe runs."""

    allowed: Callable[[], bool] = lambda: True
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    backpressure: Backpressure | None = None  # room in the outbox for each observation


class DeviceGuard:
    """Global concurrency bound, one run per device, minimum interval per device."""

    def __init__(self, concurrency: int, min_interval: float, clock: Clock | None = None):
        self.clock = clock or SystemClock()
        self.min_interval = min_interval
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_end: dict[str, datetime] = {}
        self.active: Counter[str] = Counter()
        self.in_flight = 0  # probe runs going on now

    @staticmethod
    def keys(plan: AssetPlan, target: ProbeTarget) -> list[str]:
        return sorted({f"asset:{plan.asset.id}", f"endpoint:{target.endpoint}"})

    @asynccontextmanager
    async def device(self, keys: list[str]) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for key in keys:  # sorted: no two runs can wait on each other
                await stack.enter_async_context(self._locks.setdefault(key, asyncio.Lock()))
            await self._pause(keys)
            async with self._slots:
                await self._pause(keys)  # the slot may have taken a while
                for key in keys:
                    self.active[key] += 1
                self.in_flight += 1
                try:
                    yield
                finally:
                    self.in_flight -= 1
                    now = self.clock.now()
                    for key in keys:
                        self.active[key] -= 1
                        self._last_end[key] = now

    async def _pause(self, keys: list[str]) -> None:
        if not self.min_interval:
            return
        ends = [self._last_end[k] for k in keys if k in self._last_end]
        if ends:
            wait = self.min_interval - (self.clock.now() - max(ends)).total_seconds()
            if wait > 0:
                await self.clock.sleep(wait)


def transient(obs: Observation) -> bool:
    """Worth another try later: no answer, a network error, or a refused connection."""
    if obs.status is ProbeStatus.TIMEOUT:
        return True
    reason = obs.reason or ""
    # probes/runner.py wording for OSError and ConnectionRefusedError (not a login refusal)
    return (obs.status is ProbeStatus.ERROR and reason.startswith("network error")) or (
        obs.status is ProbeStatus.REFUSED and reason.startswith("connection refused by"))


async def audit_assets(plans: Sequence[AssetPlan], sink: Sink, *, settings: Settings,
                       site: str, collector: str,
                       progress: Callable[[Observation], None] | None = None,
                       guard: DeviceGuard | None = None, control: AuditControl | None = None,
                       retries: int | None = None, retry_backoff: float | None = None,
                       clock: Clock | None = None) -> RunSummary:
    """Probe every asset once and hand each observation to ``sink`` as soon as it exists."""
    clock = clock or (guard.clock if guard else SystemClock())
    guard = guard or DeviceGuard(settings.concurrency, settings.device_min_interval, clock)
    control = control or AuditControl()
    retries = settings.retries if retries is None else retries
    backoff = settings.retry_backoff if retry_backoff is None else retry_backoff
    summary = RunSummary()
    finished = [0]

    async def attempt(plan: AssetPlan, probe: Probe, target: ProbeTarget,
                      admitted: list[bool]) -> Observation | None:
        async with guard.device(guard.keys(plan, target)):
            if not admitted[0]:  # once per job, holding the slot: the bound stays exact
                bp = control.backpressure
                admitted[0] = await bp.admit(control.stopping) if bp else True
                if not admitted[0]:
                    return None
            if control.stopping.is_set() or not control.allowed():
                return None
            return await run_probe(probe, target, collector_id=collector, site=site,
                                   deadline=settings.probe_timeout,
                                   min_interval=settings.min_request_interval)

    async def job(plan: AssetPlan, probe: Probe, target: ProbeTarget) -> bool:
        obs: Observation | None = None
        earlier: list[str] = []
        admitted = [False]
        try:
            for number in range(1, retries + 2):
                result = await attempt(plan, probe, target, admitted)
                if result is None:
                    break
                obs = result
                if not transient(obs) or number > retries or control.stopping.is_set():
                    break
                earlier.append(f"attempt {number} of {retries + 1}: {obs.status.value}: "
                               f"{obs.reason}")
                delay = min(backoff * 2 ** (number - 1), settings.retry_backoff_max)
                summary.retries += 1
                log.info("%s on %s: %s; retrying in %.0f s", probe.name, target.endpoint,
                         obs.status.value, delay)
                if await _sleep_unless(clock, delay, control.stopping):
                    break  # shutting down: keep the observation we have
            if obs is None:
                summary.skipped += 1
                return False
            if earlier:
                obs = obs.model_copy(update={"errors": [*earlier, *obs.errors]})
            summary.observations += 1
            summary.by_status[obs.status.value] += 1
            if progress:
                progress(obs)
            await sink(obs)
            return True
        finally:
            if admitted[0] and control.backpressure:
                control.backpressure.release()
            finished[0] += 1
            if finished[0] % GC_EVERY == 0:
                gc.collect()

    async def audit(plan: AssetPlan) -> None:
        for index, (probe, target) in enumerate(plan.jobs):
            if not await job(plan, probe, target):
                summary.skipped += len(plan.jobs) - index - 1
                return

    async with asyncio.TaskGroup() as tg:
        for plan in sorted(plans, key=expected_seconds, reverse=True):  # stable: ties in order
            tg.create_task(audit(plan))
    return summary


def expected_seconds(plan: AssetPlan) -> float:
    """How long an asset's probe runs typically take together (for the start order)."""
    return sum(type(probe).typical_seconds for probe, _ in plan.jobs)


async def _sleep_unless(clock: Clock, seconds: float, event: asyncio.Event) -> bool:
    """Sleep on ``clock``; True if ``event`` was set first (or already)."""
    if event.is_set():
        return True
    nap = asyncio.ensure_future(clock.sleep(seconds))
    stop = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({nap, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        nap.cancel()
        stop.cancel()
    return event.is_set()
