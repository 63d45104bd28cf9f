"""Poison for server tests: observations edited past the model, a database that refuses."""

from __future__ import annotations

import json

import sqlalchemy as sa

from otaudit.observation import Observation


def raw(obs: Observation, **changes: object) -> bytes:
    """``obs`` as JSON with top-level or nested fields replaced, bypassing the model."""
    data = json.loads(obs.to_json())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    return json.dumps(data).encode()



def poison_trigger(engine: sa.Engine) -> None:
    """A real database error for asset ``poison`` that the door cannot foresee."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.asset_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER refuse_poison BEFORE INSERT ON observations "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON observations "
                "WHEN NEW.asset_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")
