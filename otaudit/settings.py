"""Settings from environment variables (``OTAUDIT_*``) or a ``.env`` file."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings shared by collector and server.

    ``broker_url`` is ``mqtt://host:port`` (or ``mqtts://`` for TLS); MQTT credentials
    are read from the environment or from files, never from the inventory.
    """

    model_config = SettingsConfigDict(env_prefix="OTAUDIT_", env_file=".env", extra="ignore")

    broker_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: str | None = None
    mqtt_ca_file: str | None = None
    mqtt_client_cert: str | None = None
    mqtt_client_key: str | None = None
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    mqtt_session_expiry: int = 7 * 24 * 3600  # seconds the broker keeps the server's queue
    server_shared_group: str | None = None  # MQTT 5 $share group name for server replicas
    topic_prefix: str = "otaudit/v1"
    collector_id: str = "collector-1"
    database_url: str = "sqlite:///otaudit.db"
    server_client_id: str = "otaudit-server"
    probe_timeout: float = 10.0
    concurrency: int = 32
    min_request_interval: float = 0.05
    # Signed envelopes (otaudit/signing.py): collector private key (mode 0600), server's folder
    # of enrolled <collector>.pub keys; require_signatures defaults to true once a folder is set.
    signing_key_file: str | None = None
    trusted_keys_dir: str | None = None
    require_signatures: bool | None = None


def get_settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
