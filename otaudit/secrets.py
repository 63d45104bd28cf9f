"""References to secrets: inventories name *where* a secret is, never the secret."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator


class SecretRef(BaseModel):
    """``{env: VAR}`` or ``{file: PATH}``; resolved only at probe time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: object) -> object:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            raise ValueError("a secret is never written into the inventory: write "
                             "{env: VARIABLE} (read from the collector's environment) or "
                             "{file: /path/to/file} (read from a file, e.g. /run/secrets/x)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self) -> SecretStr:
        """Read the secret. Raises ``SecretUnavailable`` naming the reference, never the value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretUnavailable(f"environment variable {self.env} is not set")
            return SecretStr(value)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text().rstrip("\r\n"))
        except OSError as exc:
            raise SecretUnavailable(f"secret file {self.file}: {exc.strerror}") from None


class SecretUnavailable(Exception):
    """A referenced secret could not be read."""
