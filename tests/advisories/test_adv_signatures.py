"""OpenPGP signatures of CSAF documents: a key made in the test signs; valid, tampered, foreign
key, missing; policies require / warn / off; the result stored per advisory."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pysequoia
import pytest
import sqlalchemy as sa

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.server.advisories.db import AdvisoryRow
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.openpgp import Keyring, KeyringError, SignatureCheck, verify
from otaudit.server.db import init_db, make_engine, session_factory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
NAMES = ["icsa-19-183-01.json", "icsa-21-152-01.json", "icsa-22-207-04.json", "icsa-19-120-01.json"]


def _key(user: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pysequoia.Tsk.generate(user)


def _sign(tsk: Any, data: bytes) -> bytes:
    return pysequoia.sign(tsk.signer(), data, mode=pysequoia.SignatureMode.DETACHED)


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    return _key("CSAF Provider <csaf@provider.example>"), _key("Someone Else <x@y.example>")


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[Any, Any]) -> tuple[Path, Path]:
    """A folder: valid, tampered, signed by another key, unsigned; and the provider's key."""
    provider, other = keys
    folder = tmp_path / "docs"
    folder.mkdir()
    valid, tampered, foreign, _unsigned = NAMES
    for name in NAMES:
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    (folder / f"{valid}.asc").write_bytes(_sign(provider, (folder / valid).read_bytes()))
    (folder / f"{tampered}.asc").write_bytes(_sign(provider, (folder / tampered).read_bytes()))
    doc = json.loads((folder / tampered).read_text())
    doc["document"]["title"] += " (edited after signing)"
    (folder / tampered).write_text(json.dumps(doc))
    (folder / f"{foreign}.asc").write_bytes(_sign(other, (folder / foreign).read_bytes()))
    keyfile = tmp_path / "provider-key.asc"
    keyfile.write_text(str(provider.extract_certificate()))
    return folder, keyfile


@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def _stored(sessions: Any) -> dict[str, tuple[str | None, str | None]]:
    with sessions() as session:
        return {r.tracking_id: (r.signature, r.signature_detail)
                for r in session.scalars(sa.select(AdvisoryRow))}


def test_verify_valid_and_tampered(keys: tuple[Any, Any]) -> None:
    provider, other = keys
    data = (FIXTURES / NAMES[0]).read_bytes()
    sig = _sign(provider, data)
    ring = Keyring([provider.extract_certificate()])
    result, detail = verify(data, sig, ring)
    assert result == "valid" and provider.extract_certificate().fingerprint in detail
    assert verify(data + b" ", sig, ring)[0] == "invalid"
    assert verify(data, _sign(other, data), ring)[0] == "no_key"
    assert verify(data, b"-----BEGIN PGP SIGNATURE-----\nbroken", ring)[0] == "invalid"


def test_warn_imports_everything_and_stores_each_result(signed: tuple[Path, Path],
                                                        sessions: Any) -> None:
    folder, keyfile = signed
    check = SignatureCheck("warn", Keyring.load(keyfile))
    with sessions.begin() as session:
        report = import_source(session, str(folder), check=check)
    assert report.imported == 4
    assert report.signatures == {"valid": 1, "invalid": 1, "no_key": 1, "missing": 1}
    stored = _stored(sessions)
    assert stored["ICSA-19-183-01"][0] == "valid"
    assert stored["ICSA-21-152-01"][0] == "invalid"
    assert stored["ICSA-22-207-04"][0] == "no_key"
    assert stored["ICSA-19-120-01"][0] == "missing"


def test_require_imports_only_valid_signatures(signed: tuple[Path, Path],
                                               sessions: Any) -> None:
    folder, keyfile = signed
    check = SignatureCheck("require", Keyring.load(keyfile.parent))  # a folder of keys works
    with sessions.begin() as session:
        report = import_source(session, str(folder), check=check)
    assert report.imported == 1
    reasons = {name: reason for name, reason in report.rejected}
    assert reasons[NAMES[1]].startswith("OpenPGP signature invalid: does not verify")
    assert reasons[NAMES[2]].startswith("OpenPGP signature no key: signed by")
    assert reasons[NAMES[3]] == "OpenPGP signature missing: no .asc signature was offered"
    assert set(_stored(sessions)) == {"ICSA-19-183-01"}


def test_off_does_not_look(signed: tuple[Path, Path], sessions: Any) -> None:
    folder, keyfile = signed
    with sessions.begin() as session:
        report = import_source(session, str(folder),
                               check=SignatureCheck("off", Keyring.load(keyfile)))
    assert report.imported == 4 and report.signatures == {"not_checked": 4}


def test_policy_and_keys_from_the_environment(signed: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, keyfile = signed
    monkeypatch.setenv("OTAUDIT_ADVISORY_SIGNATURES", "require")
    monkeypatch.setenv("OTAUDIT_ADVISORY_KEYS", str(keyfile))
    check = SignatureCheck.from_environment()
    assert check.policy == "require" and len(check.keyring.certs) == 1
    monkeypatch.setenv("OTAUDIT_ADVISORY_SIGNATURES", "sometimes")
    with pytest.raises(KeyringError, match="expected one of require, warn, off"):
        SignatureCheck.from_environment()
    monkeypatch.setenv("OTAUDIT_ADVISORY_SIGNATURES", "warn")
    monkeypatch.setenv("OTAUDIT_ADVISORY_KEYS", str(keyfile.parent / "nosuch.asc"))
    with pytest.raises(KeyringError, match="no such key file"):
        SignatureCheck.from_environment()
