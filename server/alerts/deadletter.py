"""``alert_dead_letters``: alerts that could not be delivered after every attempt.

Kept so that nothing is lost silently: the body as it would have been sent (never the
signing secret), where to, how many attempts and the last error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from otaudit.server.db import Base


class DeadLetter(Base):
    __tablename__ = "alert_dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))  # webhook, syslog
    target: Mapped[str] = mapped_column(String(300))  # URL / host:port, no credentials
    event_type: Mapped[str] = mapped_column(String(32))
    site: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    attempts: Mapped[int]
    last_error: Mapped[str] = mapped_column(Text)


def dead_letters(session: Session, channel: str | None = None) -> list[DeadLetter]:
    query = sa.select(DeadLetter).order_by(DeadLetter.id)
    if channel is not None:
        query = query.where(DeadLetter.channel == channel)
    return list(session.scalars(query))
