"""References to secrets: inventories name *where* a secret is, never the secret.

A ``{file: PATH}`` secret must be a regular file of at most ``MAX_SECRET_FILE`` bytes: it is
opened without blocking, so a FIFO or a device in its place is refused at once instead of
stalling the collector. A probe option may require a minimum length
(``Annotated[SecretRef, SecretMinLength(8, "an SNMPv3 passphrase")]``): checked when the
inventory is loaded if the secret can be read then, and again when it is resolved. Messages
name the reference and the lengths, never the value.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, model_validator
from pydantic_core import core_schema

MAX_SECRET_FILE = 64 * 1024


class SecretRef(BaseModel):
    """``{env: VAR}`` or ``{file: PATH}``; resolved only at probe time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None
    _min_length: int = PrivateAttr(default=0)
    _what: str = PrivateAttr(default="the secret")

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
        """Read the secret. Raises ``SecretUnavailable`` naming the reference, never the value
        (also when it is shorter than the option using it requires)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretUnavailable(f"environment variable {self.env} is not set")
        else:
            assert self.file is not None
            value = _read_secret_file(self.file).rstrip("\r\n")
        if len(value) < self._min_length:
            raise SecretTooShort(f"{self._what} ({self.describe()}) has {len(value)} "
                                 f"characters; at least {self._min_length} are needed")
        return SecretStr(value)


def _read_secret_file(path: Path) -> str:
    """A regular file's text, opened without blocking (a FIFO with no writer would wait)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SecretUnavailable(f"secret file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretUnavailable(f"secret file {path} is not a regular file "
                                    f"({_kind(info.st_mode)})")
        if info.st_size > MAX_SECRET_FILE:
            raise SecretUnavailable(f"secret file {path} has {info.st_size} bytes; a secret "
                                    f"file holds at most {MAX_SECRET_FILE}")
        data = os.read(fd, MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise SecretUnavailable(f"secret file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretUnavailable(f"secret file {path} is not UTF-8 text") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


@dataclass(frozen=True)
class SecretMinLength:
    """``Annotated[SecretRef, SecretMinLength(8, "an SNMPv3 passphrase")]``: the secret must
    have at least ``length`` characters. Checked at validation (inventory load) when the
    secret can be read then — a secret not readable yet is reported when it is resolved —
    and again by ``SecretRef.resolve``."""

    length: int
    what: str = "the secret"

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, ref: Any) -> Any:
        if not isinstance(ref, SecretRef):
            return ref
        ref._min_length, ref._what = self.length, self.what
        try:
            ref.resolve()
        except SecretTooShort as exc:
            raise ValueError(str(exc)) from None
        except SecretUnavailable:
            pass  # not readable yet: reported when the probe resolves it
        return ref


class SecretUnavailable(Exception):
    """A referenced secret could not be read."""


class SecretTooShort(SecretUnavailable):
    """A secret is shorter than the option using it requires."""
