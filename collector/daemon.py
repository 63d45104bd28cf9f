"""``otaudit collector run`` without ``--once``: audit on schedules until SIGTERM.

One task group holds the forwarder (outbox → broker, reconnecting), the scheduler (one
loop per schedule, runs audit their assets through ``run.audit_assets``), a heartbeat
(retained status topic) and the inventory watcher (SIGHUP or a changed file: reload; a
bad new inventory keeps the old one). Every observation enters the durable outbox before
it is published, and leaves it on the server's receipt (``forwarder``); the forwarder keeps
a persistent broker session so receipts sent while it was away still arrive. When the
outbox (or its disk) is full, no probe run starts until receipts free room.

Shutdown (``stop``, on SIGTERM/SIGINT): schedules stop, probe runs in flight finish and
store their observations, runs not started are skipped, the forwarder gets
``shutdown_grace`` seconds to publish, then ``offline`` is published and the outbox closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from otaudit import __version__
from otaudit.collector import status
from otaudit.collector.clock import Clock, SystemClock
from otaudit.collector.forwarder import Forwarder, wait_event
from otaudit.collector.outbox import Backpressure, Outbox
from otaudit.collector.publisher import ObservationStore, load_receipt_verifier, load_signer
from otaudit.collector.run import AuditControl, DeviceGuard, audit_assets
from otaudit.collector.schedule import Timing, effective_schedules
from otaudit.collector.scheduler import RunInfo, Scheduler
from otaudit.collector.targets import AssetPlan, load_plan
from otaudit.errors import InputError
from otaudit.inventory import Inventory
from otaudit.settings import Settings

log = logging.getLogger(__name__)


def _fingerprint(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class CollectorDaemon:
    """The long-running collector. ``await run()``; ``stop()`` / ``reload()`` from signals."""

    def __init__(self, inventory_path: str | Path, settings: Settings, *,
                 broker_url: str | None = None, clock: Clock | None = None,
                 rng: random.Random | None = None, outbox: Outbox | None = None) -> None:
        self.inventory_path = Path(inventory_path).resolve()
        self.settings = settings
        self.broker_url = broker_url
        self.clock = clock or SystemClock()
        self.inventory, self.plans = load_plan(self.inventory_path)  # InputError: refuse start
        self._fingerprint = _fingerprint(self.inventory_path)
        self.site = self.inventory.site
        self.collector = self.inventory.collector or settings.collector_id
        self.signer = load_signer(settings, self.collector)
        self.receipt_verifier = load_receipt_verifier(settings)
        self.outbox = outbox
        self.scheduler = Scheduler(self._run_schedule, clock=self.clock, rng=rng)
        self.guard = DeviceGuard(settings.concurrency, settings.device_min_interval, self.clock)
        self.stopping = asyncio.Event()
        self.started_at = self.clock.now()
        self.loaded_at = self.started_at
        self.reload_errors = 0
        self.last_reload_error: str | None = None
        self.backpressure: Backpressure | None = None
        self.forwarder: Forwarder | None = None
        self.store: ObservationStore | None = None
        self._reload_requested = asyncio.Event()
        self._stop_at = 0.0
        self._status_changed = asyncio.Event()

    # -- control (signal handlers) --------------------------------------------------------

    def stop(self) -> None:
        if not self.stopping.is_set():
            self._stop_at = time.monotonic()
        self.stopping.set()

    def _abandon_held(self) -> bool:
        """Shutting down for longer than the grace: observations held on a full disk go."""
        return (self.stopping.is_set()
                and time.monotonic() - self._stop_at > self.settings.shutdown_grace)

    def request_reload(self) -> None:
        self._reload_requested.set()

    # -- main -----------------------------------------------------------------------------

    async def run(self) -> None:
        own = self.outbox is None
        if self.outbox is None:
            self.outbox = await asyncio.to_thread(Outbox.open, self.settings, self.collector)
        outbox = self.outbox
        self.backpressure = Backpressure(outbox, on_change=self._status_changed.set)
        self.store = ObservationStore(outbox, self.settings, self.site, self.collector,
                                      self.signer, give_up=self._abandon_held)
        self.forwarder = Forwarder(
            outbox, self.settings, broker_url=self.broker_url,
            client_id=f"otaudit-collector-{self.collector}",
            status_topic=status.status_topic(self.settings.topic_prefix, self.site,
                                             self.collector),
            status_payload=self.status_payload,
            will_payload=status.will(self.site, self.collector, pid=os.getpid(),
                                     started_at=self.started_at.isoformat()),
            receipts_for=(self.site, self.collector), receipt_verifier=self.receipt_verifier,
            persistent=True)
        self.scheduler.configure(effective_schedules(self.inventory, self.settings))
        log.info("collector %s (site %s): %d assets on schedules %s; outbox %s holds %d",
                 self.collector, self.site, len(self.plans),
                 ", ".join(effective_schedules(self.inventory, self.settings)) or "-",
                 outbox.path, outbox.entries)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.forwarder.run(), name="forwarder")
                chores = [tg.create_task(self._heartbeat(), name="heartbeat"),
                          tg.create_task(self._watch_inventory(), name="inventory watcher")]
                scheduling = tg.create_task(self.scheduler.run(), name="scheduler")
                await self.stopping.wait()
                log.info("stopping: waiting for %d probe run(s) in flight",
                         self.guard.in_flight)
                self.scheduler.stop()
                await scheduling  # runs in flight finish; their observations are stored
                for chore in chores:
                    chore.cancel()
                await self.forwarder.close(self.settings.shutdown_grace)
        finally:
            left = outbox.entries
            if own:
                outbox.close()
        log.info("stopped; %d observation(s) %s", left,
                 "wait in the outbox for the next start" if left else "left: outbox empty")

    # -- runs -----------------------------------------------------------------------------

    async def _run_schedule(self, info: RunInfo, timing: Timing) -> None:
        inventory, plans = self.inventory, self.plans  # a reload does not change a run
        mine = [p for p in plans if inventory.schedule_of(p.asset) == info.schedule]
        info.assets = len(mine)
        schedule = timing.schedule
        log.info("schedule %s: run started (%d assets)", info.schedule, len(mine))
        assert self.store is not None
        control = AuditControl(allowed=lambda: timing.in_window(self.clock.now()),
                               stopping=self.stopping, backpressure=self.backpressure)
        try:
            summary = await audit_assets(
                mine, self.store, settings=self.settings, site=self.site,
                collector=self.collector, guard=self.guard, control=control,
                retries=schedule.retries, retry_backoff=schedule.retry_backoff,
                clock=self.clock)
        finally:
            self._status_changed.set()
        info.observations = summary.observations
        info.skipped = summary.skipped
        took = (self.clock.now() - info.started_at).total_seconds()
        log.info("schedule %s: run finished in %.1f s: %d observations %s", info.schedule,
                 took, summary.observations, dict(summary.by_status))
        if summary.skipped and not self.stopping.is_set():
            log.warning("schedule %s: maintenance window closed during the run; %d probe "
                        "run(s) not started", info.schedule, summary.skipped)

    @property
    def paused(self) -> bool:
        """Auditing waits for room in the outbox."""
        return bool(self.backpressure and self.backpressure.paused)

    # -- status ---------------------------------------------------------------------------

    def snapshot(self, state: str = "online") -> dict[str, Any]:
        stats = self.scheduler.stats
        outbox, forwarder = self.outbox, self.forwarder
        auditing = "stopping" if self.stopping.is_set() else "paused" if self.paused else (
            "running")
        data: dict[str, Any] = {
            "state": state, "site": self.site, "collector": self.collector,
            "version": __version__, "pid": os.getpid(), "at": self.clock.now().isoformat(),
            "started_at": self.started_at.isoformat(), "auditing": auditing,
            "paused_reason": self.backpressure.reason if self.backpressure else None,
            "outbox": outbox.describe() if outbox else None,
            "broker": {"connected": bool(forwarder and forwarder.connected),
                       "connects": forwarder.connects if forwarder else 0,
                       "refused": forwarder.refused if forwarder else 0},
            "runs": {**stats.as_dict(), "in_progress": self.scheduler.running},
            "observations": {"stored": self.store.stored if self.store else 0,
                             "held": self.store.held if self.store else 0,
                             "lost": self.store.lost if self.store else 0,
                             "published": forwarder.published if forwarder else 0,
                             "republished": forwarder.republished if forwarder else 0,
                             "receipted": forwarder.receipted if forwarder else 0,
                             "rejected": forwarder.rejected if forwarder else 0},
            "receipts": {"on": self.settings.receipts,
                         "ignored": forwarder.bad_receipts if forwarder else 0},
            "last_run": stats.last_run.as_dict() if stats.last_run else None,
            "inventory": {"path": str(self.inventory_path), "assets": len(self.plans),
                          "schedules": sorted(effective_schedules(self.inventory,
                                                                  self.settings)),
                          "loaded_at": self.loaded_at.isoformat(),
                          "reload_errors": self.reload_errors,
                          "last_reload_error": self.last_reload_error},
        }
        if state == "offline":
            data["reason"] = "shutdown"
        return data

    def status_payload(self, state: str) -> bytes:
        return status.encode(self.snapshot(state))

    async def _heartbeat(self) -> None:
        assert self.forwarder is not None
        while True:
            await wait_event(self._status_changed, self.settings.heartbeat_interval)
            self._status_changed.clear()
            await self.forwarder.publish_status(self.status_payload("online"))

    # -- inventory reload -----------------------------------------------------------------

    async def _watch_inventory(self) -> None:
        poll = self.settings.inventory_poll_interval or None
        while True:
            await wait_event(self._reload_requested, poll)
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload("SIGHUP")
            elif _fingerprint(self.inventory_path) not in (self._fingerprint, None):
                self.reload("file changed")

    def reload(self, why: str) -> bool:
        """Load the inventory again; on any problem keep the current one and log why."""
        self._fingerprint = _fingerprint(self.inventory_path)
        try:
            inventory, plans = load_plan(self.inventory_path)
            self._same_identity(inventory)
        except InputError as exc:
            self.reload_errors += 1
            self.last_reload_error = str(exc)
            log.error("inventory reload (%s) failed, keeping the previous inventory: %s",
                      why, exc)
            self._status_changed.set()
            return False
        self._swap(inventory, plans)
        log.info("inventory reloaded (%s): %d assets on schedules %s", why, len(plans),
                 ", ".join(effective_schedules(inventory, self.settings)) or "-")
        return True

    def _same_identity(self, inventory: Inventory) -> None:
        collector = inventory.collector or self.settings.collector_id
        if (inventory.site, collector) != (self.site, self.collector):
            raise InputError(self.inventory_path, [
                f"site/collector changed from {self.site}/{self.collector} to "
                f"{inventory.site}/{collector}: restart the collector for that"])

    def _swap(self, inventory: Inventory, plans: list[AssetPlan]) -> None:
        self.inventory, self.plans = inventory, plans
        self.loaded_at = self.clock.now()
        self.last_reload_error = None
        self.scheduler.configure(effective_schedules(inventory, self.settings))
        self._status_changed.set()
