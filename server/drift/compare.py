"""What changed between two observations of one asset endpoint (pure functions, no database).

A change is one fact path with its ``kind``:

- ``firmware`` (``identity.firmware_version``), ``device_replaced`` (``identity.serial``),
  ``identity`` (the other ``identity.*`` facts), ``host_key`` (``ssh.host_key_fingerprint``),
  ``snmp_access`` (communities, versions and the v3 security of SNMP), ``accounts`` (local
  users), ``services`` (``services.*``), ``configuration`` (every other fact);
- ``now_known`` / ``now_unknown``: a fact that was unknown (with a reason) is read now, or
  the other way round. That is not a change of the value: nobody knew the value before.

Facts that move by themselves (uptime, interface state, days left on a certificate, run
mode) are ``VOLATILE`` and never drift. A fact absent from one side without an unknown
reason (another probe version) is not compared. Lists compare as sets of items (the order
a device lists its services in is not a change); ``detail`` then says what was added and
removed.

``digest`` condenses what ``diff`` compares (the non-volatile values and which facts are
unknown) into a short key stored with each observation: two
observations of an endpoint with the same digest have no change, so ingest decodes the
previous observation's facts only when the digests differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

if TYPE_CHECKING:
    from collections.abc import Iterable

    from otaudit.observation import Observation

VOLATILE = frozenset({
    "snmp.sys_uptime", "snmp.interfaces", "snmp.interfaces_up_unused", "interfaces.unused_up",
    "enip.status", "enip.status_owned", "enip.status_configured", "enip.extended_status",
    "enip.faults", "enip.state", "enip.state_name", "enip.cert_days_left",
    "opcua.cert_days_left", "s7.cpu_mode", "time.synchronized", "ssh.host_key_changed",
})
SNMP_ACCESS = frozenset({
    "snmp.communities", "snmp.default_communities_accepted", "snmp.versions_answering",
    "snmp.v1_enabled", "snmp.v2c_enabled", "snmp.v3_enabled", "snmp.v3_security_level",
    "snmp.v3_auth_protocol", "snmp.v3_priv_protocol",
})
KINDS = ("firmware", "device_replaced", "identity", "host_key", "snmp_access", "accounts",
         "services", "configuration", "now_known", "now_unknown")


@dataclass(frozen=True)
class Change:
    """One fact that differs: ``before``/``after`` are values (None on the unknown side)."""

    fact: str
    kind: str
    before: Any
    after: Any
    detail: dict[str, Any] = field(default_factory=dict)


def kind_of(fact: str) -> str:
    """The kind of a value change of ``fact``."""
    if fact == "identity.firmware_version":
        return "firmware"
    if fact == "identity.serial":
        return "device_replaced"
    if fact.startswith("identity."):
        return "identity"
    if fact == "ssh.host_key_fingerprint":
        return "host_key"
    if fact in SNMP_ACCESS:
        return "snmp_access"
    if fact == "auth.local_users":
        return "accounts"
    if fact.startswith("services."):
        return "services"
    return "configuration"


def _key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)


def same(before: Any, after: Any) -> bool:
    """Equal values; lists equal as multisets of items, dicts whatever their key order."""
    if type(before) is type(after) and before == after:  # the usual case, no serialising
        return True  # (the type test keeps True and 1 apart)
    if isinstance(before, list) and isinstance(after, list):
        return sorted(map(_key, before)) == sorted(map(_key, after))
    return _key(before) == _key(after)


def _list_detail(before: Any, after: Any) -> dict[str, Any]:
    if not (isinstance(before, list) and isinstance(after, list)):
        return {}
    old = {_key(i): i for i in before}
    new = {_key(i): i for i in after}
    return {"added": [new[k] for k in sorted(set(new) - set(old))],
            "removed": [old[k] for k in sorted(set(old) - set(new))]}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The changes from one observation payload to the next (``facts`` and ``unknown`` of
    each), sorted by fact path."""
    old_facts, new_facts = before.get("facts") or {}, after.get("facts") or {}
    old_unknown, new_unknown = before.get("unknown") or {}, after.get("unknown") or {}
    changes: list[Change] = []
    for fact in sorted(set(old_facts) | set(new_facts) | set(old_unknown) | set(new_unknown)):
        if fact in VOLATILE:
            continue
        if fact in old_facts and fact in new_facts:
            was, now = old_facts[fact].get("value"), new_facts[fact].get("value")
            if not same(was, now):
                changes.append(Change(fact, kind_of(fact), was, now, _list_detail(was, now)))
        elif fact in old_unknown and fact in new_facts:
            changes.append(Change(fact, "now_known", None, new_facts[fact].get("value"),
                                  {"unknown_before": old_unknown[fact]}))
        elif fact in old_facts and fact in new_unknown:
            changes.append(Change(fact, "now_unknown", old_facts[fact].get("value"), None,
                                  {"unknown_now": new_unknown[fact]}))
    return changes


DIGEST_VERSION = b"drift-digest-2\n"  # changes whenever what ``diff`` compares changes


def comparable(obs: Observation) -> dict[str, Any]:
    """The part of an observation ``diff`` reads (``facts`` values and ``unknown``), built from
    the model without serialising it."""
    return {"facts": {path: {"value": fact.value} for path, fact in obs.facts.items()},
            "unknown": obs.unknown}


def digest(payload: dict[str, Any]) -> str:
    """A key of everything ``diff`` compares in ``payload`` (see ``comparable``): equal digests
    mean ``diff`` finds no change; different ones only that it may (a list or a dict in another
    order is another digest and the same value to ``diff``)."""
    facts, unknown = payload.get("facts") or {}, payload.get("unknown") or {}
    return _digest({path: fact.get("value") for path, fact in facts.items()
                    if path not in VOLATILE}, unknown)


def observation_digest(obs: Observation) -> str:
    """``digest(comparable(obs))``, without building ``comparable``."""
    return _digest({path: fact.value for path, fact in obs.facts.items()
                    if path not in VOLATILE}, obs.unknown)


def _digest(values: dict[str, Any], unknown: Iterable[str]) -> str:
    text = to_json([values, sorted(p for p in unknown if p not in VOLATILE)],
                   fallback=str)  # unsorted: 40 % cheaper, and equal text still means
    # equal values (only fewer equal digests if a probe reorders); pydantic-core's encoder:
    # a third of ``json.dumps``'s time
    return hashlib.blake2b(DIGEST_VERSION + text, digest_size=16).hexdigest()
