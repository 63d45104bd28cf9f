"""Alerts: what someone must hear about now, sent to a webhook and/or syslog.

``model`` (the ``Alert``: new fail, new open advisory, drift, collector silent),
``rules`` (which changes become alerts), ``webhook`` (JSON, HMAC-SHA256 signed, retried with
exponential backoff and jitter), ``syslog`` (RFC 5424 with structured data, or CEF, over
UDP or TCP), ``dispatch`` (a background thread that delivers, and writes what could not be
delivered to ``alert_dead_letters``), ``deadletter`` (that table). Configured with
``OTAUDIT_ALERT_*`` settings (``otaudit/settings.py``); the webhook secret is read from the
environment or a file and never logged or stored.
"""
