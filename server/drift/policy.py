"""``must_not_drift``: facts a baseline says must not change, outside a maintenance window.

A baseline folder (the bundled one, a site overlay) may hold ``drift.yaml``::

    must_not_drift:
      - identity.serial                      # a fact name: never outside a window
      - fact: identity.firmware_version      # or a rule with its own window
        maintenance_window: {weekdays: [sat], start: "22:00", end: "04:00",
                             timezone: Europe/Berlin}
    maintenance_window: {start: "02:00", end: "03:00"}   # default of the names (optional)

A change of such a fact is a *violation* (severity ``high`` unless the rule says otherwise)
unless a maintenance window overlaps the time between the two observations (the change may
have been made then): it is then *in_window*. ``otaudit baseline lint`` checks the file
(schema with lines, fact names against the fact catalogue, duplicates). A site overlay's
rules replace the bundled rule of the same fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Severity = Literal["info", "low", "medium", "high", "critical"]
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
Policy = Literal["violation", "in_window"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A weekly maintenance window; ``end`` at or before ``start`` runs past midnight."""

    weekdays: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError(f"{value!r} is not a time HH:MM (00:00 to 23:59)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "Europe/Berlin, or UTC)") from None
        return value

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether the window is open at some moment between ``start`` and ``end``."""
        zone = ZoneInfo(self.timezone)
        a, b = start.astimezone(zone), end.astimezone(zone)
        if b - a >= timedelta(days=8):
            return True  # every weekly window opened in between
        opens, closes = time.fromisoformat(self.start), time.fromisoformat(self.end)
        day: date = a.date() - timedelta(days=1)
        while day <= b.date():
            if WEEKDAYS[day.weekday()] in self.weekdays:
                w_start = datetime.combine(day, opens, zone)
                w_end = datetime.combine(day + timedelta(days=1) if closes <= opens else day,
                                         closes, zone)
                if w_start <= b and w_end >= a:
                    return True
            day += timedelta(days=1)
        return False


FactName = Annotated[str, Field(min_length=3, max_length=128)]


class Rule(_Strict):
    fact: FactName
    severity: Severity = "high"
    maintenance_window: Window | None = None


Entry = Annotated[Annotated[FactName, Tag("<name>")] | Annotated[Rule, Tag("<rule>")],
                  Discriminator(lambda v: "<name>" if isinstance(v, str) else "<rule>")]


class DriftFile(_Strict):
    """The schema of ``drift.yaml``."""

    schema_version: Literal[1] = 1
    must_not_drift: list[Entry] = Field(default_factory=list)
    maintenance_window: Window | None = None

    def rules(self) -> list[Rule]:
        """Every entry as a rule (a name takes the file's default window)."""
        return [Rule(fact=r, maintenance_window=self.maintenance_window) if isinstance(r, str)
                else r if r.maintenance_window or not self.maintenance_window
                else r.model_copy(update={"maintenance_window": self.maintenance_window})
                for r in self.must_not_drift]


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    severity: str


@dataclass
class DriftPolicy:
    """The must-not-drift rules of a baseline, by fact."""

    rules: dict[str, Rule] = field(default_factory=dict)

    def judge(self, fact: str, before_at: datetime, after_at: datetime) -> Verdict | None:
        """None when ``fact`` may drift; else a violation or a change in the window."""
        rule = self.rules.get(fact)
        if rule is None:
            return None
        window = rule.maintenance_window
        if window is not None and window.overlaps(before_at, after_at):
            return Verdict("in_window", "medium")
        return Verdict("violation", rule.severity)
