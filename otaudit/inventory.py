"""The inventory: one site, its zones with a target Security Level, and its assets.

Endpoints carry the host and port every protocol shares; the protocol-specific
options (unit id, rack/slot, SNMP credentials, SSH personality, ...) are extra
fields that the collector validates against each probe's own options model.
Credentials appear only as secret references (``{env: VAR}`` / ``{file: PATH}``).

Schedules (used by the collector daemon, ``otaudit collector run`` without ``--once``)
say when the assets are audited::

    schedules:
      - id: plcs
        interval: 15m                  # or: cron: "0 */6 * * *" (5 fields, with tz:)
        jitter: 30s                    # each run starts at a random delay in [0, jitter)
        maintenance_windows:           # optional: audit only inside one of these
          - {days: mon-fri, start: "22:00", end: "04:00", tz: Europe/Berlin}
          - {days: [sat, sun], start: "00:00", end: "00:00"}   # start == end: whole day
        retries: 2                     # optional (default: settings): transient failures
        retry_backoff: 10s             # optional (default: settings): doubled per retry
    assets:
      - {id: plc-17, schedule: plcs, ...}

- ``interval`` runs first when the collector starts, then every interval from then on;
  ``cron`` runs at the expression's times in ``tz`` (default UTC). Exactly one of the two.
- Durations are seconds or ``<n><unit>`` with ``ms s m h d w`` (``1h30m``, ``45s``).
- ``jitter`` must be shorter than the interval; it spreads the load of several collectors
  (Telegraf's ``collection_jitter``) and never moves the schedule's base times.
- A maintenance window opens on each of its ``days`` at ``start`` (wall-clock time in
  ``tz``, default UTC) and closes at ``end``; an ``end`` at or before ``start`` means the
  next day (``mon-fri 22:00-04:00`` includes Friday night, not Sunday night). ``days`` is
  a list or comma list of names (``mon``..``sun``), cron numbers (0 or 7 = Sunday) and
  ranges (``mon-fri``, ``1-5``, ``fri-mon``); absent or ``*`` means every day. Quote
  times: unquoted ``22:00`` is a YAML 1.1 base-60 number (accepted, but ambiguous).
- A run due outside every window is deferred to the next window opening (plus jitter);
  a run still going when a window closes probes no further device.
- A run due while the previous run of the same schedule is still going is skipped.
- An asset without ``schedule`` uses the schedule with id ``default``: the inventory's
  if it defines one, else the settings' (``OTAUDIT_SCHEDULE_INTERVAL``,
  ``OTAUDIT_SCHEDULE_JITTER``).

Conduits (IEC 62443-3-2) join two zones, or a zone and an external network, and say what
may cross them, in which direction, and which device of the inventory enforces that::

    networks:                          # what lies outside the zones
      - {id: enterprise, name: Office IT, trust: untrusted}   # trust: untrusted (default) | trusted
    conduits:
      - id: c-01
        between: [cell-1, control]     # two zones, or a zone and a network
        enforced_by: [fw-c01]          # firewall, router or switch assets of the inventory
        flows:
          - {protocol: modbus, ports: [502], from: control, to: cell-1}
          - {protocol: s7, from: control, to: cell-1, bidirectional: true}

``protocol`` is a lower-case name (``modbus``, ``s7``, ``https``, ``opc-ua``, ``any``, ...);
``from``/``to`` are the conduit's two ends. The server turns the conduits into facts of each
zone (``conduit.links``, docs/facts.md) that the SR 5.1/5.2 checks judge.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from otaudit.errors import InputError, pydantic_problems
from otaudit.observation import IDENTIFIER, AssetKind
from otaudit.yamlio import YamlDoc, YamlError, load_yaml

FOUNDATIONAL_REQUIREMENTS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]  # as observations carry them
Name = Annotated[str, Field(max_length=200)]  # as the server stores them
SecurityLevel = Annotated[int, Field(ge=0, le=4)]
DEFAULT_SCHEDULE = "default"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string like ``90``, ``45s``, ``15m``, ``1h30m``, ``2d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '15m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    compact = text.replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{value!r} is not a duration (examples: 30s, 15m, 1h30m, 2d)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
"""Seconds; accepts ``45``, ``"45s"``, ``"15m"``, ``"1h30m"``, ``"2d"``."""


def _time_of_day(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return dt.time(value // 60, value % 60)  # unquoted 22:00 is YAML 1.1 base 60: 1320
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not match or int(match[1]) > 24 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day HH:MM")
        hours, minutes = int(match[1]), int(match[2])
        if hours == 24:
            if minutes:
                raise ValueError(f"{value!r} is not a time of day HH:MM")
            return dt.time(0, 0)
        return dt.time(hours, minutes)
    return value


def _zone_name(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (IANA name like Europe/Berlin)"
                             ) from None
    return value


def _day(token: str) -> int:
    token = token.strip().lower()
    for names in (_DAY_NAMES, _FULL_DAY_NAMES):
        if token in names:
            return names.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return (int(token) - 1) % 7  # cron: 0 and 7 are Sunday, 1 is Monday
    raise ValueError(f"{token!r} is not a day (mon..sun, or cron 0-7)")


def _day_set(value: Any) -> Any:
    if value is None:
        return frozenset(range(7))
    items = [value] if isinstance(value, str | int) else value
    if not isinstance(items, list | tuple | set | frozenset):
        return value
    days: set[int] = set()
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part == "*":
                days.update(range(7))
            elif "-" in part:
                first, last = (_day(p) for p in part.split("-", 1))
                days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
            elif part:
                days.add(_day(part))
    if not days:
        raise ValueError("no days given")
    return frozenset(days)


TimeOfDay = Annotated[dt.time, BeforeValidator(_time_of_day)]
ZoneName = Annotated[str, BeforeValidator(_zone_name)]
Weekdays = Annotated[frozenset[Annotated[int, Field(ge=0, le=6)]], BeforeValidator(_day_set)]
"""Python weekdays, Monday = 0; parsed from names, cron numbers and ranges."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecurityLevelVector(_Strict):
    """Target SL per foundational requirement (IEC 62443-3-3 FR1..FR7)."""

    IAC: SecurityLevel
    UC: SecurityLevel
    SI: SecurityLevel
    DC: SecurityLevel
    RDF: SecurityLevel
    TRE: SecurityLevel
    RA: SecurityLevel

    @classmethod
    def uniform(cls, level: int) -> SecurityLevelVector:
        return cls(**dict.fromkeys(FOUNDATIONAL_REQUIREMENTS, level))

    def as_dict(self) -> dict[str, int]:
        return {fr: getattr(self, fr) for fr in FOUNDATIONAL_REQUIREMENTS}


class Zone(_Strict):
    id: Identifier
    name: Name | None = None
    sl_t: SecurityLevelVector

    @field_validator("sl_t", mode="before")
    @classmethod
    def _level_or_vector(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= 4:
                raise ValueError("a target security level is 1, 2, 3 or 4")
            return SecurityLevelVector.uniform(value)
        return value


class Endpoint(BaseModel):
    """Where a protocol answers. Extra fields are the probe's options."""

    model_config = ConfigDict(extra="allow")

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            if HOSTNAME.match(value) and not value.replace(".", "").isdigit():
                return value
        raise ValueError(f"{value!r} is neither an IP address nor a host name")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MaintenanceWindow(_Strict):
    """Audit only from ``start`` to ``end`` (local time in ``tz``) on ``days``."""

    days: Weekdays = Field(default_factory=lambda: frozenset(range(7)))
    start: TimeOfDay
    end: TimeOfDay
    tz: ZoneName = "UTC"


class Schedule(_Strict):
    """When a group of assets is audited (see the module docstring)."""

    id: Identifier
    interval: Duration | None = None
    cron: str | None = None
    tz: ZoneName = "UTC"
    jitter: Duration = 0.0
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    retry_backoff: Duration | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from croniter import croniter

        value = " ".join(value.split())
        if not (value.startswith("@") or len(value.split()) == 5) or not croniter.is_valid(
                value):
            raise ValueError(f"{value!r} is not a 5-field cron expression (min hour dom mon dow)")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Schedule:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of 'interval' and 'cron'")
        if self.interval is not None:
            if self.interval < 1:
                raise ValueError("interval must be at least 1s")
            if self.jitter >= self.interval:
                raise ValueError("jitter must be shorter than the interval")
        return self


class Network(_Strict):
    """A network outside the inventory's zones (enterprise IT, the internet, a vendor)."""

    id: Identifier
    name: str | None = None
    trust: Literal["untrusted", "trusted"] = "untrusted"


def _protocol(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,31}", value):
        raise ValueError(f"{value!r} is not a protocol name: lower case like modbus, s7, "
                         "https, opc-ua or any")
    return value


ProtocolName = Annotated[str, BeforeValidator(_protocol)]
Port = Annotated[int, Field(ge=1, le=65535)]
ENFORCING_KINDS = ("firewall", "router", "switch")


class Flow(_Strict):
    """Traffic a conduit allows: a protocol (and ports) from one end to the other."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    protocol: ProtocolName
    ports: list[Port] = Field(default_factory=list)
    source: Identifier = Field(alias="from")
    to: Identifier
    bidirectional: bool = False


class Conduit(_Strict):
    """A conduit between two zones, or a zone and an external network."""

    id: Identifier
    name: str | None = None
    between: Annotated[list[Identifier], Field(min_length=2, max_length=2)]
    enforced_by: list[Identifier] = Field(default_factory=list)
    flows: list[Flow] = Field(default_factory=list)

    @field_validator("enforced_by", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def conduit_problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """References of ``networks`` and ``conduits`` in a raw inventory mapping: (location,
    problem) pairs for unknown zones/networks/assets, enforcing assets that cannot
    enforce, flows whose ends are not the conduit's, and duplicate ids."""
    def items(key: str) -> list[tuple[int, dict[str, Any]]]:
        value = data.get(key)
        return [(i, x) for i, x in enumerate(value) if isinstance(x, dict)] \
            if isinstance(value, list) else []

    zones = {z.get("id") for _, z in items("zones")}
    networks = {n.get("id") for _, n in items("networks")}
    kinds = {a.get("id"): a.get("kind") for _, a in items("assets")}
    out: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[Any] = set()
    for i, net in items("networks"):
        if net.get("id") in zones:
            out.append((("networks", i, "id"), f"network id {net.get('id')!r} is also a zone id"))
        if net.get("id") in seen:
            out.append((("networks", i, "id"), f"duplicate id {net.get('id')!r}"))
        seen.add(net.get("id"))
    ends_known = zones | networks
    seen = set()
    for i, conduit in items("conduits"):
        cid = conduit.get("id")
        if cid in seen:
            out.append((("conduits", i, "id"), f"duplicate id {cid!r}"))
        seen.add(cid)
        between = conduit.get("between") if isinstance(conduit.get("between"), list) else []
        for j, end in enumerate(between):
            if end not in ends_known:
                out.append((("conduits", i, "between", j), f"unknown zone or network {end!r}; "
                             f"zones: {_listed(zones)}; networks: {_listed(networks)}"))
        if len(between) == 2 and between[0] == between[1]:
            out.append((("conduits", i, "between"), "a conduit joins two different ends"))
        if len(between) == 2 and not set(between) & zones:
            out.append((("conduits", i, "between"), "a conduit needs at least one zone"))
        enforcers = conduit.get("enforced_by")
        enforcers = [enforcers] if isinstance(enforcers, str) else enforcers or []
        for j, asset in enumerate(enforcers if isinstance(enforcers, list) else []):
            loc = ("conduits", i, "enforced_by") if isinstance(conduit.get("enforced_by"), str) \
                else ("conduits", i, "enforced_by", j)
            if asset not in kinds:
                out.append((loc, f"unknown asset {asset!r}"))
            elif kinds[asset] not in ENFORCING_KINDS:
                out.append((loc, f"asset {asset!r} is a {kinds[asset]}; a conduit is enforced "
                                 f"by a {', '.join(ENFORCING_KINDS[:-1])} or "
                                 f"{ENFORCING_KINDS[-1]}"))
        flows = conduit.get("flows") if isinstance(conduit.get("flows"), list) else []
        for j, flow in enumerate(flows):
            if not isinstance(flow, dict):
                continue
            for key in ("from", "to"):
                if key in flow and between and flow[key] not in between:
                    out.append((("conduits", i, "flows", j, key),
                                f"{flow[key]!r} is not an end of conduit {cid!r} "
                                f"({' - '.join(map(str, between))})"))
            if flow.get("from") is not None and flow.get("from") == flow.get("to"):
                out.append((("conduits", i, "flows", j), "'from' and 'to' are the same end"))
    return out


def _listed(ids: set[Any]) -> str:
    return ", ".join(sorted(str(i) for i in ids if i is not None)) or "-"


class Asset(_Strict):
    id: Identifier
    name: Name | None = None
    kind: AssetKind
    zone: Identifier
    vendor: str | None = None
    model: str | None = None
    endpoints: dict[str, Endpoint] = Field(min_length=1)
    credential_checks: bool = False
    tags: list[str] = Field(default_factory=list)
    schedule: Identifier | None = None


class Inventory(_Strict):
    site: Identifier
    collector: Identifier | None = None
    # The zone the collector sits in: with conduits declared, the collector also tests which
    # services of the other zones' assets it reaches (conduit verification, probe "reach").
    collector_zone: Identifier | None = None
    zones: list[Zone] = Field(min_length=1)
    schedules: list[Schedule] = Field(default_factory=list)
    assets: list[Asset] = Field(default_factory=list)
    networks: list[Network] = Field(default_factory=list)
    conduits: list[Conduit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Inventory:
        zone_ids = [z.id for z in self.zones]
        problems = []
        for dup in sorted({z for z in zone_ids if zone_ids.count(z) > 1}):
            problems.append(f"duplicate zone id {dup!r}")
        schedule_ids = [s.id for s in self.schedules]
        for dup in sorted({s for s in schedule_ids if schedule_ids.count(s) > 1}):
            problems.append(f"duplicate schedule id {dup!r}")
        seen: set[str] = set()
        for asset in self.assets:
            if asset.schedule not in (None, DEFAULT_SCHEDULE, *schedule_ids):
                problems.append(f"asset {asset.id!r} names unknown schedule {asset.schedule!r}")
            if asset.id in seen:
                problems.append(f"duplicate asset id {asset.id!r}")
            seen.add(asset.id)
            if asset.zone not in zone_ids:
                problems.append(f"asset {asset.id!r} names unknown zone {asset.zone!r}")
        if self.collector_zone is not None and self.collector_zone not in zone_ids:
            problems.append(f"collector_zone names unknown zone {self.collector_zone!r}")
        if self.conduits or self.networks:
            problems += [f"{'.'.join(map(str, loc))}: {problem}" for loc, problem in
                         conduit_problems(self.model_dump(by_alias=True, include={
                             "zones", "assets", "networks", "conduits"}))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)

    def asset(self, asset_id: str) -> Asset:
        return next(a for a in self.assets if a.id == asset_id)

    def schedule_of(self, asset: Asset) -> str:
        """The id of the schedule that audits ``asset`` (``default`` when it names none)."""
        return asset.schedule or DEFAULT_SCHEDULE


def _locate_problems(exc: ValidationError, doc: YamlDoc) -> list[str]:
    problems = pydantic_problems(exc, doc.locate)
    # Model-level errors (duplicates, references) carry no location: point at the asset.
    return problems


def parse_inventory(doc: YamlDoc) -> Inventory:
    if not isinstance(doc.data, dict):
        raise InputError(doc.source, ["expected a mapping with 'site', 'zones' and 'assets'"])
    try:
        return Inventory.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(doc.source, _locate_problems(exc, doc)) from None


def load_inventory(path: str | Path) -> tuple[Inventory, YamlDoc]:
    """Load and validate an inventory file; raise ``InputError`` naming file, line, field."""
    try:
        doc = load_yaml(path)
    except (YamlError, OSError) as exc:
        raise InputError(path, [str(exc)]) from None
    return parse_inventory(doc), doc
