"""The HTTP API (FastAPI) under ``/api/v1``: ``create_app(database_url, baseline_dir)``.

Route handlers only check who asks, call ``otaudit.server.services`` and shape the answer;
they hold no SQL and no rules.
"""

from otaudit.server.api.app import create_app

__all__ = ["create_app"]
