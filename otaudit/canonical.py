"""The canonical JSON bytes that signatures cover (observations, receipts, manifests).

Kept apart from ``otaudit.signing`` so that code which only encodes or compares (the
collector's receipt handling without a configured key) does not load ``cryptography``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, ASCII only, no NaN."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")
