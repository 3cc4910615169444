"""Supply-chain guard: warn when the installed litellm is a known-malicious release.

litellm 1.82.7 and 1.82.8 were published by an attacker (they install a ``litellm_init.pth`` that runs code
at every Python start-up). rxagents pins litellm exactly, but an environment can still end up with one of
them (a resolver override, a pre-populated image). :func:`check_litellm_version` looks at the *installed
distribution's metadata* only (``importlib.metadata``): it never imports litellm, so it is cheap enough to
run when rxagents is imported.
"""

from __future__ import annotations

import importlib.metadata
import warnings

__all__ = ["MALICIOUS_LITELLM_VERSIONS", "SecurityWarning", "check_litellm_version"]

#: litellm releases known to be malicious. Never install these.
MALICIOUS_LITELLM_VERSIONS: frozenset[str] = frozenset({"1.82.7", "1.82.8"})


class SecurityWarning(UserWarning):
    """Something in the environment is a known security risk (e.g. a malicious dependency release)."""


def check_litellm_version() -> str | None:
    """Warn with :class:`SecurityWarning` if the installed litellm is 1.82.7 or 1.82.8.

    Reads the version from the installed distribution's metadata (litellm is not imported). Does nothing
    when litellm is not installed.

    Returns:
        The installed litellm version, or ``None`` when litellm is not installed.

    Example::

        >>> check_litellm_version()  # with the pinned litellm installed
        '1.110.2'
    """
    try:
        version = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return None
    if version.strip() in MALICIOUS_LITELLM_VERSIONS:
        warnings.warn(
            f"litellm {version} is installed: litellm 1.82.7 and 1.82.8 are known-malicious releases that run "
            "attacker code at Python start-up (via litellm_init.pth). Uninstall it now "
            "(pip uninstall litellm), delete any litellm_init.pth in site-packages, rotate every credential "
            "this environment could read, then install the version rxagents pins.",
            SecurityWarning,
            stacklevel=2,
        )
    return version
