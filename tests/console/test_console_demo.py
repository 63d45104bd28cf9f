"""``otaudit demo --serve``'s login: a new admin of every site with a random password that
signs in to the console; a second call never reuses the name or the password."""

from __future__ import annotations

from fastapi.testclient import TestClient

from otaudit.cli.demo_serve import DEMO_USER, demo_login
from otaudit.server.api import create_app
from otaudit.server.db import make_engine, session_factory
from otaudit.server.services import accounts

from support.api import seed


def test_demo_login_is_an_admin_of_every_site_and_signs_in(sqlite_url: str) -> None:
    seed(sqlite_url)
    name, password, sites = demo_login(sqlite_url)
    assert (name, sites) == (DEMO_USER, ["plant-a", "plant-b"])
    assert len(password) >= 20
    again = demo_login(sqlite_url)
    assert again[0].startswith(DEMO_USER + "-") and again[1] != password
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        for site in sites:
            assert {"name": name, "role": "admin"} in accounts.users_of_site(session, site)
    engine.dispose()
    app = create_app(sqlite_url)
    with TestClient(app) as client:
        signed = client.post("/console/login", data={"username": name, "password": password})
        assert signed.status_code == 200 and "plant-a" in signed.text and "plant-b" in signed.text
    app.state.engine.dispose()
