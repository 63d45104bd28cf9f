"""observations: the index orders as "newest" does

``ix_obs_endpoint_newest`` on ``(site, asset_id, probe, observed_at, received_at,
observation_id)`` replaces ``ix_obs_site_asset_probe_time``, which ended at ``observed_at``:
"the newest observation of an endpoint" (drift's ``previous``, ``store.latest_observations``)
orders by all three times and ids, so the database sorted every row of an endpoint that
shared its newest ``observed_at`` (SQLite: a temporary B-tree per endpoint) instead of
reading one entry of the index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:55:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_index("ix_obs_site_asset_probe_time")
        batch.create_index("ix_obs_endpoint_newest", ["site", "asset_id", "probe", "observed_at",
                                                      "received_at", "observation_id"],
                           unique=False)


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_index("ix_obs_endpoint_newest")
        batch.create_index("ix_obs_site_asset_probe_time",
                           ["site", "asset_id", "probe", "observed_at"], unique=False)
