"""Request bodies of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserBody(_Body):
    name: str = Field(pattern=NAME)
    password: str = Field(min_length=12, max_length=1024)
    role: str = Field(pattern="^(viewer|auditor|admin)$")


class RoleBody(_Body):
    role: str = Field(pattern="^(viewer|auditor|admin)$")


class TokenBody(_Body):
    user: str = Field(pattern=NAME)
    role: str = Field(pattern="^(viewer|auditor|admin)$")
    expires_days: int = Field(30, ge=1, le=366)


class WaiverBody(_Body):
    """An exception or attestation as in the YAML files (``baselines/examples``)."""

    record: dict[str, Any]
