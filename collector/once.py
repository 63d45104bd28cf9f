"""``collector run --once``: audit every asset once, through the outbox, and drain it.

Observations go to the durable outbox first, and a forwarder publishes them while the
audit goes on. The run succeeds only when the outbox is empty at the end (older entries
of an earlier run included): with receipts on (the default), when the server has receipted
every entry. When the broker stays unreachable (``once_connect_attempts`` failures in a row
once the audit is over) it raises ``BrokerUnavailable``; when the server's receipts stop
coming for ``once_receipt_wait`` seconds, ``ReceiptsMissing`` (a ``BrokerUnavailable``).
Whatever was not receipted stays in the outbox for the next run. It never touches the
daemon's status topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from otaudit.collector.forwarder import BrokerUnavailable, Forwarder
from otaudit.collector.outbox import Backpressure, Entry, Outbox
from otaudit.collector.publisher import ObservationStore, load_receipt_verifier, load_signer
from otaudit.collector.run import AuditControl, RunSummary, audit_assets
from otaudit.collector.targets import AssetPlan
from otaudit.inventory import Inventory
from otaudit.observation import Observation
from otaudit.settings import Settings

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 60.0  # a --once run waits this long for another one on the same outbox


async def run_once(inventory: Inventory, plans: list[AssetPlan], settings: Settings, *,
                   broker_url: str | None = None,
                   progress: Callable[[Observation], None] | None = None,
                   on_published: Callable[[Entry], None] | None = None,
                   outbox: Outbox | None = None) -> RunSummary:
    """Audit, store, publish; return once every entry of the outbox is acknowledged."""
    collector = inventory.collector or settings.collector_id
    signer = load_signer(settings, collector)
    own = outbox is None
    if outbox is None:
        outbox = await asyncio.to_thread(Outbox.open, settings, collector,
                                         lock_timeout=LOCK_TIMEOUT)
    try:
        return await _run(inventory, plans, settings, outbox, collector, signer, broker_url,
                          progress, on_published)
    finally:
        if own:
            outbox.close()


async def _run(inventory: Inventory, plans: list[AssetPlan], settings: Settings,
               outbox: Outbox, collector: str, signer: object | None, broker_url: str | None,
               progress: Callable[[Observation], None] | None,
               on_published: Callable[[Entry], None] | None) -> RunSummary:
    forwarder = Forwarder(outbox, settings, broker_url=broker_url,
                          client_id=f"otaudit-collector-{collector}-once-{os.getpid()}",
                          on_published=on_published, receipts_for=(inventory.site, collector),
                          receipt_verifier=load_receipt_verifier(settings))
    control = AuditControl()

    def give_up() -> bool:
        """A full outbox (or disk) and no broker, or no receipts: stop auditing (the
        entries stay for the next run)."""
        if forwarder.failures >= settings.once_connect_attempts:
            why = "the broker unreachable"
        elif settings.receipts and forwarder.silence() > settings.once_receipt_wait:
            why = "no receipt from the server"
        else:
            return False
        if not control.stopping.is_set():
            log.error("outbox full and %s: auditing stops", why)
        control.stopping.set()
        return True

    control.backpressure = Backpressure(outbox, give_up=give_up)
    store = ObservationStore(outbox, settings, inventory.site, collector, signer,
                             give_up=give_up)
    forwarding = asyncio.create_task(forwarder.run(), name="forwarder")
    try:
        summary = await audit_assets(plans, store, settings=settings, site=inventory.site,
                                     collector=collector, progress=progress, control=control)
    except BaseException:
        forwarding.cancel()
        with contextlib.suppress(asyncio.CancelledError, BrokerUnavailable):
            await forwarding
        raise
    forwarder.finish(max_failures=settings.once_connect_attempts)
    try:
        await forwarding
    except BrokerUnavailable as exc:
        raise type(exc)(f"{exc}; {outbox.entries} observation(s) stay in the outbox "
                        f"{outbox.path} for the next run") from None
    summary.published = forwarder.delivered
    if outbox.entries:  # defensive: finish() returns only on an empty outbox
        raise BrokerUnavailable(f"{outbox.entries} observation(s) left in the outbox "
                                f"{outbox.path}")
    if summary.skipped:
        log.warning("%d probe run(s) were not started", summary.skipped)
    return summary
