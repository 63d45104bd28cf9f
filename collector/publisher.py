"""What goes into the outbox for an observation: its topic and its payload (signed or not).

The payload is built once, when the observation enters the outbox, so a re-send after a
broker outage is byte-identical (a signed envelope keeps its seq and signature).
"""

from __future__ import annotations

from collections.abc import Callable

from otaudit.collector.forwarder import BrokerUnavailable
from otaudit.collector.outbox import Outbox
from otaudit.mqtt import observation_topic
from otaudit.observation import Observation
from otaudit.settings import Settings

__all__ = ["BrokerUnavailable", "ObservationStore", "SigningUnavailable", "load_signer"]


class SigningUnavailable(Exception):
    """A signing key is configured but cannot be used: never publish unsigned then."""


def load_signer(settings: Settings, collector: str) -> object | None:
    """``otaudit.signing.Signer`` when ``OTAUDIT_SIGNING_KEY_FILE`` is set, else None."""
    if not getattr(settings, "signing_key_file", None):
        return None
    try:
        from otaudit.signing import SigningKeyError, signer_from_settings
    except ImportError as exc:
        raise SigningUnavailable(f"a signing key is configured but signing is unavailable: "
                                 f"{exc}") from None
    try:
        return signer_from_settings(settings, collector)
    except (SigningKeyError, ValueError) as exc:
        raise SigningUnavailable(str(exc)) from None


class ObservationStore:
    """The sink the audit writes to: observation → outbox entry (durable on return)."""

    def __init__(self, outbox: Outbox, settings: Settings, site: str, collector: str,
                 signer: object | None = None) -> None:
        self.outbox = outbox
        self.prefix = settings.topic_prefix
        self.site = site
        self.collector = collector
        self.signer = signer
        self.stored = 0

    def payload(self, obs: Observation) -> bytes | Callable[[int], bytes]:
        if self.signer is None:
            return obs.to_json()
        sign = self.signer.sign  # type: ignore[attr-defined]
        return lambda seq: sign(obs, seq)

    async def __call__(self, obs: Observation) -> None:
        topic = observation_topic(self.prefix, self.site, self.collector, obs.asset.id)
        await self.outbox.put(str(obs.observation_id), topic, self.payload(obs))
        self.stored += 1
