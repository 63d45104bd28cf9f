"""Settings from environment variables (``OTAUDIT_*``) or a ``.env`` file."""

from __future__ import annotations

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
    topic_prefix: str = "otaudit/v1"
    collector_id: str = "collector-1"
    database_url: str = "sqlite:///otaudit.db"
    server_client_id: str = "otaudit-server"
    probe_timeout: float = 10.0
    concurrency: int = 32
    min_request_interval: float = 0.05


def get_settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
