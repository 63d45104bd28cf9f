"""Pages of a list (bounded size, stable order from the service) with an ETag."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Query, Request
from starlette.responses import Response

MAX_LIMIT = 500


class Page:
    """``limit`` (1..500, default 100) and ``offset`` query parameters."""

    def __init__(self, limit: int = Query(100, ge=1, le=MAX_LIMIT,
                                          description=f"page size, at most {MAX_LIMIT}"),
                 offset: int = Query(0, ge=0, description="items to skip")) -> None:
        self.limit, self.offset = limit, offset


def json_response(request: Request, body: Any, status: int = 200) -> Response:
    """JSON with a strong ETag of its bytes; 304 when If-None-Match names it."""
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    wanted = request.headers.get("if-none-match", "")
    if status == 200 and etag in {t.strip().removeprefix("W/") for t in wanted.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(data, status_code=status, media_type="application/json",
                    headers={"ETag": etag})


def paged(request: Request, items: list[Any], page: Page, total: int | None = None,
          already_sliced: bool = False) -> Response:
    """One page of ``items`` (the whole sorted list, or the page when ``already_sliced``)."""
    total = len(items) if total is None else total
    part = items if already_sliced else items[page.offset:page.offset + page.limit]
    end = page.offset + len(part)
    return json_response(request, {"items": part, "total": total, "limit": page.limit,
                                   "offset": page.offset,
                                   "next_offset": end if end < total else None})
