"""Settings come from keyword arguments over ``OTAUDIT_*`` environment variables over the
``.env`` file, as with pydantic-settings (which the collector no longer loads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from otaudit.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.lower().startswith("otaudit_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_environment(clean_env: Path) -> None:
    settings = Settings()
    assert settings.concurrency == 32 and settings.receipts is True
    assert settings.broker_url == "mqtt://127.0.0.1:1883" and settings.state_dir is None


def test_environment_is_parsed_by_field_type_any_case(clean_env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTAUDIT_CONCURRENCY", "64")
    monkeypatch.setenv("otaudit_receipts", "false")
    monkeypatch.setenv("OTAUDIT_Schedule_Interval", "15m")
    monkeypatch.setenv("OTAUDIT_MQTT_PASSWORD", "s3cret")
    monkeypatch.setenv("OTAUDIT_STATE_DIR", "/var/lib/x")
    monkeypatch.setenv("OTAUDIT_NOT_A_SETTING", "ignored")
    monkeypatch.setenv("CONCURRENCY", "1")  # no prefix: not ours
    settings = Settings()
    assert settings.concurrency == 64 and settings.receipts is False
    assert settings.schedule_interval == 900.0
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.state_dir == Path("/var/lib/x")
    assert not hasattr(settings, "not_a_setting")


def test_keyword_over_environment_over_dotenv(clean_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("OTAUDIT_CONCURRENCY=5\nOTAUDIT_RETRIES=4\n"
                                    "export OTAUDIT_COLLECTOR_ID='from-file'\nOTHER=1\n")
    assert (Settings().concurrency, Settings().retries) == (5, 4)
    assert Settings().collector_id == "from-file"
    monkeypatch.setenv("OTAUDIT_RETRIES", "1")
    assert (Settings().concurrency, Settings().retries) == (5, 1)
    assert Settings(retries=0).retries == 0
    assert Settings(_env_file=None).concurrency == 32  # the file ignored on request


def test_bad_value_from_environment_is_a_validation_error(clean_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTAUDIT_RETRIES", "11")  # le=10
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("OTAUDIT_RETRIES", "10")  # the bound itself
    assert Settings().retries == 10
    monkeypatch.setenv("OTAUDIT_MQTT_PROTOCOL", "4")
    with pytest.raises(ValidationError):
        Settings()


def test_settings_do_not_load_pydantic_settings() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, otaudit.settings; "
                           "print('pydantic_settings' in sys.modules)"],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "False"
