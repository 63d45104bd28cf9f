"""``collector run --once``: audit every asset, publish, wait for every acknowledgement."""

from __future__ import annotations

from collections.abc import Callable

from otaudit.collector.publisher import connect_publisher
from otaudit.collector.run import RunSummary, audit_assets
from otaudit.collector.targets import AssetPlan

from otaudit.inventory import Inventory
from otaudit.observation import Observation
from otaudit.settings import Settings


async def run_once(inventory: Inventory, plans: list[AssetPlan], settings: Settings, *,
                   broker_url: str | None = None,
                   progress: Callable[[Observation], None] | None = None) -> RunSummary:
    """Connect to the broker first (fail fast), then audit and publish as results arrive.

    Raises ``BrokerUnavailable`` when the broker cannot be reached or a publish fails.
    """
    collector = inventory.collector or settings.collector_id
    async with connect_publisher(settings, inventory.site, collector, broker_url) as publisher:
        summary = await audit_assets(plans, publisher.publish, settings=settings,
                                     site=inventory.site, collector=collector, progress=progress)
        summary.published = publisher.published
    return summary
