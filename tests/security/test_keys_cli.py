"""``otaudit keys generate`` / ``otaudit keys id``."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.signing import Signer, Verifier

from support.observations import make_observation


def test_generate_writes_private_key_0600_and_enrollable_public_key(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "generate", "c1", "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    private, public = tmp_path / "k" / "c1.key", tmp_path / "k" / "c1.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE" not in public.read_bytes()
    assert private.read_text() not in result.output

    signer = Signer.from_key_file(private, "c1")
    assert signer.key_id in result.output
    payload = signer.sign(make_observation(collector="c1"), 1)
    assert Verifier.from_dir(tmp_path / "k").verify(payload, "c1")[1] == 1

    for path in (private, public):
        shown = runner.invoke(app, ["keys", "id", str(path)])
        assert shown.exit_code == 0 and shown.output.strip() == signer.key_id

    again = runner.invoke(app, ["keys", "generate", "c1", "--out", str(tmp_path / "k")])
    assert again.exit_code == 2 and "already exists" in again.output
    assert Signer.from_key_file(private, "c1").key_id == signer.key_id  # untouched
    forced = runner.invoke(app, ["keys", "generate", "c1", "--out", str(tmp_path / "k"),
                                 "--force"])
    assert forced.exit_code == 0
    assert Signer.from_key_file(private, "c1").key_id != signer.key_id
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_generate_refuses_collector_ids_that_are_not_a_topic_segment(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "generate", "c1/#", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []
