"""What goes into the outbox for an observation: its topic and its payload (signed or not).

The payload is built once, when the observation enters the outbox, so a re-send after a
broker outage is byte-identical (a signed envelope keeps its seq and signature).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from otaudit.collector.forwarder import BrokerUnavailable
from otaudit.collector.outbox import Outbox, OutboxDiskFull
from otaudit.mqtt import observation_topic
from otaudit.observation import Observation
from otaudit.receipt import ReceiptVerifier
from otaudit.settings import Settings

__all__ = ["BrokerUnavailable", "ObservationStore", "SigningUnavailable", "load_receipt_verifier",
           "load_signer"]
log = logging.getLogger(__name__)


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


def load_receipt_verifier(settings: Settings) -> ReceiptVerifier | None:
    """The server's receipt key when ``OTAUDIT_RECEIPT_PUBLIC_KEY_FILE`` is set, else None
    (then without loading ``cryptography``)."""
    if not getattr(settings, "receipt_public_key_file", None):
        return None
    from otaudit.receipt import verifier_from_settings
    from otaudit.signing import SigningKeyError

    try:
        return verifier_from_settings(settings)
    except SigningKeyError as exc:
        raise SigningUnavailable(f"receipt public key: {exc}") from None


class ObservationStore:
    """The sink the audit writes to: observation → outbox entry (durable on return).

    When the outbox's disk is full the observation is held in memory and written as soon as
    there is room again (the outbox pauses the audit meanwhile, so at most the probe runs in
    flight wait here); ``give_up`` (shutdown, ``--once`` without a broker) ends the wait,
    and the observation is then reported lost at ERROR level.
    """

    RETRY = 0.5  # seconds between two tries on a full disk

    def __init__(self, outbox: Outbox, settings: Settings, site: str, collector: str,
                 signer: object | None = None, *,
                 give_up: Callable[[], bool] | None = None) -> None:
        self.outbox = outbox
        self.prefix = settings.topic_prefix
        self.site = site
        self.collector = collector
        self.signer = signer
        self.give_up = give_up
        self.stored = 0
        self.held = 0  # observations waiting for disk space now
        self.lost = 0  # observations given up on a full disk (shutdown)

    def payload(self, obs: Observation) -> bytes | Callable[[int], bytes]:
        if self.signer is None:
            return obs.to_json()
        sign = self.signer.sign  # type: ignore[attr-defined]
        return lambda seq: sign(obs, seq)

    async def __call__(self, obs: Observation) -> None:
        topic = observation_topic(self.prefix, self.site, self.collector, obs.asset.id)
        payload = self.payload(obs)
        holding = False
        try:
            while True:
                try:
                    await self.outbox.put(str(obs.observation_id), topic, payload)
                    break
                except OutboxDiskFull:
                    if not holding:
                        holding = True
                        self.held += 1
                    if self.give_up is not None and self.give_up():
                        self.lost += 1
                        log.error("observation %s (%s of asset %s) is lost: the outbox disk "
                                  "is full and the collector stops", obs.observation_id,
                                  obs.probe, obs.asset.id)
                        return
                    await asyncio.sleep(self.RETRY)
        finally:
            if holding:
                self.held -= 1
        self.stored += 1
        log.debug("observation %s stored in the outbox (asset %s, %s)", obs.observation_id,
                  obs.asset.id, obs.probe)
