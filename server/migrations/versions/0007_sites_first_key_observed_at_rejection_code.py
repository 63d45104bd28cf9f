"""sites as the first key: assets, zones, findings by (site, id); observed_at; rejection codes

Existing data moves under its site: an asset's site is the one it was stored with; a zone
takes the site of the assets in it (one row per site when several sites used the same zone
id; a zone no asset uses takes the only site there is, else ``default``); a finding takes its
asset's site. ``observations.observed_at`` is ``min(finished_at, received_at)``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _replace(table: str, columns: list[sa.Column], constraints: list[sa.Constraint],
             copy: str, indexes: dict[str, list[str]]) -> None:
    """Create ``table`` anew with ``columns``; ``copy`` is the SELECT that fills it from the
    old one (named ``old``). Portable (SQLite cannot change a primary key in place)."""
    op.rename_table(table, f"{table}_old")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # constraint names follow the table, not the rename
        for name in bind.execute(sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
                {"t": f"{table}_old"}).scalars().all():
            op.execute(f'ALTER TABLE "{table}_old" RENAME CONSTRAINT "{name}" '
                       f'TO "{name}_old"')
        for name in bind.execute(sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                {"t": f"{table}_old"}).scalars().all():
            if not name.endswith("_old"):
                op.execute(f'ALTER INDEX "{name}" RENAME TO "{name}_old"')
    else:
        for name in bind.execute(sa.text(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                "AND sql IS NOT NULL"), {"t": f"{table}_old"}).scalars().all():
            op.execute(f'DROP INDEX "{name}"')
    op.create_table(table, *columns, *constraints)
    names = ", ".join(c.name for c in columns if c.autoincrement is not True)
    op.execute(f"INSERT INTO {table} ({names}) {copy.format(old=f'{table}_old')}")
    op.drop_table(f"{table}_old")
    for name, cols in indexes.items():
        op.create_index(name, table, cols, unique=False)


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("observed_at", _TZ, nullable=True))
    op.execute("UPDATE observations SET observed_at = CASE WHEN finished_at < received_at "
               "THEN finished_at ELSE received_at END")
    with op.batch_alter_table("observations") as batch:
        batch.alter_column("observed_at", existing_type=_TZ, nullable=False)
        batch.drop_index("ix_obs_asset_probe_time")
        batch.create_index("ix_obs_site_asset_probe_time",
                           ["site", "asset_id", "probe", "observed_at"], unique=False)
    with op.batch_alter_table("rejected_messages") as batch:
        batch.add_column(sa.Column("code", sa.String(length=32), nullable=True))

    _replace("assets", [
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("last_seen", _TZ, nullable=False),
    ], [sa.PrimaryKeyConstraint("site", "asset_id")],
        "SELECT site, asset_id, kind, zone, name, last_seen FROM {old}",
        {"ix_assets_zone": ["zone"]})

    fallback = ("COALESCE((SELECT CASE WHEN COUNT(DISTINCT site) = 1 THEN MIN(site) END "
                "FROM assets), 'default')")
    _replace("zones", [
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("sl_t", sa.JSON(), nullable=False),
    ], [sa.PrimaryKeyConstraint("site", "zone_id")],
        "SELECT a.site, z.zone_id, z.name, z.sl_t FROM {old} z "
        "JOIN (SELECT DISTINCT site, zone FROM assets) a ON a.zone = z.zone_id "
        f"UNION ALL SELECT {fallback}, z.zone_id, z.name, z.sl_t FROM {{old}} z "
        "WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.zone = z.zone_id)", {})

    _replace("findings", [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("check_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("evaluated_at", _TZ, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    ], [sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "asset_id", "check_id", name="uq_finding_site_asset_check")],
        "SELECT a.site, f.asset_id, f.zone, f.check_id, f.status, f.evaluated_at, f.detail "
        "FROM {old} f JOIN assets a ON a.asset_id = f.asset_id", {})


    site_of = ("COALESCE((SELECT MIN(a.site) FROM assets a WHERE a.asset_id = {t}.asset_id), "
               "(SELECT MIN(o.site) FROM observations o WHERE o.asset_id = {t}.asset_id), "
               "'default')")
    _replace("patch_assets", [
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("identity_key", sa.String(length=64), nullable=False),
        sa.Column("observation_id", sa.String(length=36), nullable=True),
        sa.Column("cursor", _TZ, nullable=True),
        sa.Column("evaluated", sa.String(length=200), nullable=True),
    ], [sa.PrimaryKeyConstraint("site", "asset_id")],
        f"SELECT {site_of.format(t='p')}, p.asset_id, p.zone, p.identity, p.identity_key, "
        "p.observation_id, p.cursor, p.evaluated FROM {old} p",
        {"ix_patch_assets_zone": ["zone"]})
    status_columns = ("asset_id", "zone", "advisory_id", "cve", "verdict", "state",
                      "product_id", "product_name", "expression", "basis", "reason",
                      "installed_version", "fixed_in", "remediation_category", "remediation",
                      "cvss", "severity", "affected_since", "patched_at", "first_seen",
                      "updated_at")
    _replace("patch_status", [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("advisory_id", sa.String(length=128), nullable=False),
        sa.Column("cve", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("product_name", sa.Text(), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("installed_version", sa.String(length=128), nullable=True),
        sa.Column("fixed_in", sa.String(length=128), nullable=True),
        sa.Column("remediation_category", sa.String(length=32), nullable=True),
        sa.Column("remediation", sa.Text(), nullable=True),
        sa.Column("cvss", sa.Float(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("affected_since", _TZ, nullable=True),
        sa.Column("patched_at", _TZ, nullable=True),
        sa.Column("first_seen", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    ], [sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "asset_id", "advisory_id", "cve",
                            name="uq_patch_site_asset_adv_cve")],
        f"SELECT {site_of.format(t='p')}, "
        + ", ".join(f"p.{c}" for c in status_columns) + " FROM {old} p",
        {"ix_patch_status_zone": ["zone"]})
    for table, old_index, new_index in (
            ("patch_identity_history", "ix_patch_identity_history_asset_id",
             "ix_patch_identity_site_asset"),
            ("patch_status_history", "ix_patch_status_history_asset_id",
             "ix_patch_history_site_asset")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("site", sa.String(length=64), nullable=True))
        op.execute(f"UPDATE {table} SET site = {site_of.format(t=table)}")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("site", existing_type=sa.String(length=64), nullable=False)
            batch.drop_index(old_index)
            batch.create_index(new_index, ["site", "asset_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("0005 moves data under its site; restore a backup to go back")
