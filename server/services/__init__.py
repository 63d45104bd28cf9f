"""One home per domain for what the CLI and the API both show.

Each module takes a SQLAlchemy ``Session`` (and filters) and returns plain data: the CLI
(``otaudit gap``, ``report``, ``patch status``) and the HTTP API (``otaudit.server.api``) call
the same function, so they cannot disagree. Route handlers hold no SQL and no rules.
"""

from datetime import UTC, datetime


def aware(value: datetime) -> datetime:
    """A stored datetime with its UTC zone (SQLite hands datetimes back without it)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the UTC offset (SQLite hands datetimes back without their zone)."""
    if value is None:
        return None
    return aware(value).isoformat()
