"""Settings from environment variables (``OTAUDIT_*``) or a ``.env`` file.

Read as pydantic-settings would (``env_prefix="OTAUDIT_"``, names case-insensitive, the
``.env`` file of the working directory below the environment, keyword arguments above
both, unknown names ignored) by a few lines of our own: pydantic-settings costs a
collector about 1.4 MiB resident (its CLI, cloud and file sources, argparse, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from otaudit.inventory import Duration

# Least time between two requests to one device, on every path that talks to a device (the
# collector, `otaudit probe`, the demo, benches, tests): probes/runner.py applies it.
DEFAULT_MIN_REQUEST_INTERVAL = 0.05


ENV_PREFIX = "OTAUDIT_"
ENV_FILE = ".env"


class Settings(BaseModel):
    """Runtime settings shared by collector and server.

    ``broker_url`` is ``mqtt://host:port`` (or ``mqtts://`` for TLS); MQTT credentials
    are read from the environment or from files, never from the inventory.
    """

    model_config = ConfigDict(extra="ignore")

    def __init__(self, _env_file: str | os.PathLike[str] | None = ENV_FILE,
                 **values: Any) -> None:
        """``values`` over ``OTAUDIT_*`` environment variables over ``_env_file``'s."""
        super().__init__(**{**from_environment(type(self), _env_file), **values})

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
    # Batches are checked and stored in a process of their own (server/store_worker.py);
    # false: in threads of the server's process (one core).
    server_store_worker: bool = True
    probe_timeout: float = 10.0
    concurrency: int = 32
    min_request_interval: float = Field(DEFAULT_MIN_REQUEST_INTERVAL, ge=0)
    # Site vendor knowledge (docs/extending.md): <vendor_dir>/snmp-vendors.yaml is merged
    # over the bundled probes/snmp/vendors.yaml (site rules first, same id replaces).
    vendor_dir: Path | None = None

    # Collector daemon and store-and-forward (durations: seconds or "15m", "1h", ...).
    state_dir: Path | None = None  # outbox; default $STATE_DIRECTORY, ~/.local/state/otaudit
    outbox_max_entries: int = Field(100_000, ge=1)  # full outbox: auditing pauses
    outbox_max_bytes: int = Field(256 * 2**20, ge=1)
    schedule_interval: Duration = 6 * 3600.0  # the "default" schedule, unless the inventory
    schedule_jitter: Duration = 60.0  # defines one (capped at half the interval)
    device_min_interval: Duration = 1.0  # between two probe runs on one device
    retries: int = Field(2, ge=0, le=10)  # after a timeout or network error
    retry_backoff: Duration = 5.0  # doubled per retry, at most retry_backoff_max
    retry_backoff_max: Duration = 300.0
    reconnect_min_delay: Duration = 0.5  # broker reconnect backoff, doubled up to the max
    reconnect_max_delay: Duration = 30.0
    once_connect_attempts: int = Field(3, ge=1)  # --once gives up after this many failures
    heartbeat_interval: Duration = 60.0  # status topic refresh
    inventory_poll_interval: Duration = 5.0  # reload on file change (0: only on SIGHUP)
    shutdown_grace: Duration = 5.0  # SIGTERM: time to publish what is in the outbox
    # End-to-end receipts (otaudit/receipt.py): an outbox entry leaves only once the server's
    # receipt says it is committed (false: on the broker's PUBACK, for a consumer other than
    # the otaudit server; the guarantee then rests on the broker). Unreceipted entries are
    # re-published after receipt_timeout, doubled (jittered) per attempt up to
    # receipt_max_delay; --once gives up when no receipt came for once_receipt_wait.
    receipts: bool = True
    receipt_timeout: Duration = 30.0
    receipt_max_delay: Duration = 900.0
    once_receipt_wait: Duration = 60.0
    receipt_signing_key_file: str | None = None  # server: Ed25519 key that signs receipts
    receipt_public_key_file: str | None = None  # collector: accept only receipts signed so
    # Signed envelopes (otaudit/signing.py): collector private key (mode 0600), server's folder
    # of enrolled <collector>.pub keys; require_signatures defaults to true once a folder is set.
    # Site policy (baselines/examples has samples): used by server, report and gap alike.
    exceptions_file: Path | None = None
    attestations_file: Path | None = None
    # A site's own checks and controls merged over the bundled baseline (docs/extending.md).
    baseline_dir: Path | None = None
    signing_key_file: str | None = None
    trusted_keys_dir: str | None = None
    # The server's own Ed25519 key (PKCS#8 PEM, mode 0600): signs evidence packages.
    server_signing_key_file: str | None = None
    require_signatures: bool | None = None
    # Alerts (otaudit/server/alerts): a webhook (JSON, HMAC-SHA256 signed with the secret from
    # the environment or a file, never logged) and/or syslog (udp://host:514, tcp://host:601;
    # RFC 5424 or CEF). Retried with exponential backoff and jitter, then kept as dead letters.
    alert_webhook_url: str | None = None
    alert_webhook_secret: SecretStr | None = None
    alert_webhook_secret_file: str | None = None
    alert_syslog_target: str | None = None
    alert_syslog_format: Literal["rfc5424", "cef"] = "rfc5424"
    alert_min_severity: Literal["info", "low", "medium", "high", "critical"] = "low"
    alert_max_attempts: int = Field(6, ge=1, le=20)
    alert_retry_base: Duration = 1.0  # doubled per attempt up to alert_retry_max, jittered
    alert_retry_max: Duration = 60.0
    alert_timeout: Duration = 5.0
    # A collector is silent when neither its status nor an observation came for this many
    # heartbeat intervals (alert once, again after it was heard from).
    alert_collector_silent_intervals: int = Field(3, ge=1)


def from_environment(cls: type[BaseModel], env_file: str | os.PathLike[str] | None,
                     environ: Any = os.environ) -> dict[str, str]:
    """The values of ``cls``'s fields named ``OTAUDIT_<FIELD>`` (any case) in ``env_file``
    (a dotenv file; absent: none) and then in ``environ`` (which wins)."""
    fields = cls.model_fields
    prefix = ENV_PREFIX.lower()
    found: dict[str, str] = {}
    sources: list[Any] = []
    if env_file is not None and Path(env_file).expanduser().is_file():
        from dotenv import dotenv_values

        sources.append(dotenv_values(Path(env_file).expanduser(), encoding="utf-8"))
    sources.append(environ)
    for source in sources:
        for name, value in source.items():
            key = name.lower()
            if value is not None and key.startswith(prefix) and key[len(prefix):] in fields:
                found[key[len(prefix):]] = value
    return found


def get_settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
