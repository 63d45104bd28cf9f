"""Third-party modules imported without the library warnings a user should never see.

asyncssh 2.24 touches cryptography's DSA classes when it is imported (it registers
ssh-dss for legacy devices), and negotiates finite-field Diffie-Hellman with legacy
devices; cryptography >= 51 flags both as deprecated on every use. Both are findings
otaudit reports as facts (``ssh.weak_host_key``, ``ssh.weak_kex``), not warnings for the
operator's terminal. The filters match only those two messages, raised from asyncssh.
"""

from __future__ import annotations

import warnings

_ASYNCSSH_DEPRECATIONS = (r"DSA is deprecated", r"Diffie-Hellman over finite fields")


def quiet_asyncssh_warnings() -> None:
    """Ignore cryptography's DSA/FFDH deprecation warnings when raised from asyncssh."""
    from cryptography.utils import CryptographyDeprecationWarning

    for message in _ASYNCSSH_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message,
                                category=CryptographyDeprecationWarning, module=r"asyncssh\b")


quiet_asyncssh_warnings()
import asyncssh  # noqa: E402  (after the filters, on purpose)

__all__ = ["asyncssh", "quiet_asyncssh_warnings"]
