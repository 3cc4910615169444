"""Troubleshooting: :func:`supports_streaming` and the ``rxagents doctor`` checklist.

``rxagents doctor [--model M] [--api-base URL] [--timeout S]`` checks, without running a model:

- **model**: which backend ``--model`` resolves to, the name sent, and why (the rules of
  :func:`rxagents.models.resolve_model`); whether litellm's model info says it streams natively;
- **keys**: which provider keys are set — names only, values are never printed;
- **endpoint**: ``GET <base>/models`` on ``--api-base`` / ``OPENAI_BASE_URL`` with a short timeout;
- **litellm**: the installed version against rxagents' pin and the known-malicious 1.82.7 / 1.82.8;
- **litellm_init.pth**: the start-up hook those releases planted in site-packages.

Each check prints one line (``ok``, ``warn``, ``FAIL`` or ``skip``); the exit status is 1 when any check
fails, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import logging
import os
import re
import site
import sys
import sysconfig
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rxagents._urls import api_base_problem, safe_url
from rxagents._validate import check_str
from rxagents.errors import ConfigurationError
from rxagents.models import OfflineModel, provider_key_variables, provider_of, resolve_model
from rxagents.models._litellm import import_litellm

__all__ = ["KNOWN_BAD_LITELLM", "Check", "doctor_main", "supports_streaming"]

#: litellm releases that were published by an attacker: never install or import them.
KNOWN_BAD_LITELLM = frozenset({"1.82.7", "1.82.8"})
_BAD_PTH = "litellm_init.pth"
_ENDPOINT_VARS = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
_STREAMING_MODES = (None, "chat", "completion", "responses")

Status = Literal["ok", "warn", "fail", "skip"]


def _is_offline(model_name: str) -> bool:
    return model_name == "offline" or model_name.startswith("offline/")


def _native_streaming(model_name: str) -> bool | None:
    """litellm's answer for ``model_name``: True/False, or None when its model map does not know the model."""
    version = _installed("litellm")
    if version in KNOWN_BAD_LITELLM:
        raise ConfigurationError(
            f"litellm {version} is a known-malicious release and will not be imported: run `rxagents doctor`"
        )
    litellm = import_litellm()
    try:
        info = litellm.get_model_info(model_name)
    except Exception:
        return None
    if info.get("mode") not in _STREAMING_MODES:  # embeddings, images, audio...: no chat stream at all
        return False
    return bool(litellm.utils.supports_native_streaming(model_name, None))


def supports_streaming(model_name: str) -> bool:
    """Whether ``model_name`` streams its answer token by token.

    ``"offline"`` (the embedded offline model) always does, without importing litellm. For any other name the
    answer comes from litellm's model info (``litellm.get_model_info`` and
    ``litellm.utils.supports_native_streaming``, from the model map bundled with litellm — no network): True for
    chat models litellm knows to stream natively; False for models it knows do not (litellm then fakes a stream
    with one chunk, e.g. ``"o1-pro"``), for non-chat models (embeddings, images), and for names its model map
    does not know — a model served by your own OpenAI-compatible endpoint usually streams anyway; try it, or
    run ``rxagents doctor --model NAME``.

    The answer is about the model itself: it does not check keys, and ``"gpt-4o-mini"`` is True even on a
    machine where an :class:`~rxagents.Agent` would fall back to the offline model for lack of a key.

    Raises:
        ConfigurationError: ``model_name`` is not a non-empty string; or the installed litellm is a
            known-malicious release (1.82.7, 1.82.8), which is not imported.

    Example::

        >>> supports_streaming("offline")
        True
    """
    name = check_str("model_name", model_name, hint="e.g. 'gpt-4o-mini'").strip()
    if _is_offline(name):
        return True
    return _native_streaming(name) is True


# --- checks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    status: Status
    name: str
    detail: str


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Hold back a logger's records: the doctor reports the same facts itself."""
    logger = logging.getLogger(logger_name)

    def drop(record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _endpoint(api_base: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The configured endpoint (resolve_model's precedence) and where it came from."""
    if api_base:
        return api_base, "--api-base"
    for var in _ENDPOINT_VARS:
        if env.get(var):
            return env[var], var
    return None, ""


def check_model(model: str | None, *, api_base: str | None, env: Mapping[str, str]) -> Check:
    """Which backend ``model`` resolves to, the name sent, and why."""
    shown = repr(model) if model else "(no --model)"
    try:
        with _quiet("rxagents"):
            resolved = resolve_model(model, api_base=api_base, env=env)
    except ConfigurationError as error:
        return Check("fail", "model", f"{shown}: {error}")
    if isinstance(resolved.backend, OfflineModel):
        if resolved.fallback_reason:
            return Check(
                "warn", "model",
                f"{shown} -> the embedded offline model, because {resolved.fallback_reason}. Set the key, "
                "or --api-base / OPENAI_BASE_URL for an OpenAI-compatible server, to use a real model.",
            )
        return Check("ok", "model", f"{shown} -> the embedded offline model (no network, no key)")
    base, source = _endpoint(api_base, env)
    if base:
        key = "key from OPENAI_API_KEY" if env.get("OPENAI_API_KEY") else "no key: a placeholder is sent"
        why = f"because {source} is set; {key}"
        where = f" to {safe_url(base)}"
    else:
        provider = provider_of(_requested(model) or resolved.model) or "?"
        var = provider_key_variables().get(provider, "")
        why = f"because {var} is set" if var else f"provider {provider!r} needs no key"
        where = f" to {safe_url(resolved.api_base)}" if resolved.api_base else ""
    if resolved.backend_name == "direct":
        backend = "the direct backend (OpenAI's chat-completions protocol, read by rxagents)"
    else:
        backend = resolved.backend_name
    return Check("ok", "model", f"{shown} -> {backend}, sent as {resolved.model!r}{where} ({why})")


def _requested(model: str | None) -> str:
    """The model name asked for, without a ``litellm/`` backend prefix."""
    return (model or "").strip().removeprefix("litellm/")


def check_streaming(model: str | None, *, api_base: str | None, env: Mapping[str, str]) -> Check:
    """Whether the model streams natively, per litellm's model info (also when a missing key means the
    offline model stands in for it today)."""
    try:
        with _quiet("rxagents"):
            resolved = resolve_model(model, api_base=api_base, env=env)
    except ConfigurationError:
        return Check("skip", "streaming", "no model to check (see above)")
    fallback = isinstance(resolved.backend, OfflineModel)
    if fallback and (not model or _is_offline(model.strip())):
        return Check("ok", "streaming", "the offline model streams token by token")
    # litellm's model map knows a model by litellm's name: the requested one, except for names litellm is sent
    target = _requested(model) if model and resolved.backend_name != "litellm" else resolved.model
    version = _installed("litellm")
    if version is None or version in KNOWN_BAD_LITELLM:
        return Check("skip", "streaming", "litellm is missing or unsafe (see below), so it was not asked")
    answer = _native_streaming(target)
    later = "; until its key is set, the offline model (which streams) stands in for it" if fallback else ""
    if answer is None and _endpoint(api_base, env)[0] and not fallback:
        return Check(
            "skip", "streaming",
            f"{target!r} is not in litellm's model map (normal for a model your endpoint serves), so it could "
            "not be checked; OpenAI-compatible servers (vLLM, llama.cpp, Ollama) normally stream",
        )
    if answer is None:
        return Check(
            "warn", "streaming",
            f"{target!r} is not in litellm's model map, so streaming is unconfirmed; OpenAI-compatible "
            f"servers (vLLM, llama.cpp, Ollama) normally stream{later}",
        )
    if not answer:
        return Check(
            "warn", "streaming",
            f"litellm says {target!r} does not stream natively: its answer arrives as one chunk{later}",
        )
    return Check("ok", "streaming", f"{target!r} streams natively (litellm model info){later}")


def check_keys(env: Mapping[str, str], *, endpoint: bool = False) -> Check:
    """Which provider keys are set. Names only: values are never read into the report. With an ``endpoint``
    configured, no key at all is normal (local servers rarely need one)."""
    names = sorted({var for var in provider_key_variables().values() if var})
    present = [var for var in names if env.get(var, "").strip()]
    empty = [var for var in names if var in env and not env[var].strip()]
    padded = [var for var in present if env[var] != env[var].strip() or env[var][:1] in "'\""]
    problems = []
    if empty:
        problems.append(f"set but empty: {', '.join(empty)}")
    if padded:
        problems.append(f"with surrounding spaces or quotes: {', '.join(padded)}")
    if problems:
        return Check("warn", "keys", "; ".join(problems) + " (values are never shown)")
    if present:
        return Check("ok", "keys", f"set: {', '.join(present)} (values are never shown)")
    if endpoint:
        return Check("ok", "keys", "no provider key set; requests to the endpoint carry a placeholder key")
    return Check(
        "warn", "keys",
        "no provider key set: known provider models (e.g. gpt-4o-mini) fall back to the offline model. "
        f"Keys rxagents knows: {', '.join(names)}",
    )


def check_endpoint(
    api_base: str | None, *, env: Mapping[str, str], model: str | None = None, timeout: float = 3.0
) -> Check:
    """``GET <base>/models`` on the configured OpenAI-compatible endpoint, with a short timeout."""
    import httpx

    base, source = _endpoint(api_base, env)
    if not base:
        return Check("skip", "endpoint", "none configured (--api-base or OPENAI_BASE_URL)")
    shown = safe_url(base)
    problem = api_base_problem(base)
    if problem is not None:
        return Check("fail", "endpoint", f"{source}={shown!r} is not usable: {problem}; e.g. http://127.0.0.1:8000/v1")
    url = base.rstrip("/") + "/models"
    headers: dict[str, str] = {}
    key = env.get("OPENAI_API_KEY", "").strip()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    started = time.perf_counter()
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return Check("fail", "endpoint", f"{shown}/models did not answer within {timeout:g} s ({source})")
    except httpx.HTTPError as error:
        reason = f"{type(error).__name__}: {error}".replace(base, shown)
        if key:
            reason = reason.replace(key, "***")
        return Check("fail", "endpoint", f"cannot reach {shown}/models ({source}): {reason}; is the server running?")
    elapsed_ms = (time.perf_counter() - started) * 1000
    status = response.status_code
    if status in (401, 403):
        return Check("fail", "endpoint", f"{shown}/models rejected the key ({status}): check OPENAI_API_KEY")
    if status == 404:
        return Check(
            "warn", "endpoint",
            f"{shown} is reachable but has no /models ({status}); OpenAI-compatible servers usually serve "
            "under /v1: is the base URL right?",
        )
    if status >= 400:
        return Check("fail", "endpoint", f"{shown}/models answered HTTP {status}")
    try:
        served = [str(item["id"]) for item in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return Check("warn", "endpoint", f"{shown}/models answered {status} but not with an OpenAI model list")
    listing = ", ".join(served[:5]) + (f" (+{len(served) - 5} more)" if len(served) > 5 else "") or "no models"
    detail = f"{shown} answered in {elapsed_ms:.0f} ms; serves: {listing}"
    wanted = (model or "").removeprefix("openai/")
    if wanted and wanted not in served:
        return Check("warn", "endpoint", f"{detail}; it does not list {wanted!r}")
    return Check("ok", "endpoint", detail)


def check_litellm(installed: str | None, pinned: str | None) -> Check:
    """The installed litellm against the pin and the known-malicious releases."""
    if installed is None:
        pin = f"=={pinned}" if pinned else ""
        return Check("fail", "litellm", f"not installed: only the offline model works. pip install 'litellm{pin}'")
    if installed in KNOWN_BAD_LITELLM:
        return Check(
            "fail", "litellm",
            f"{installed} is a known-malicious release (1.82.7 and 1.82.8 were published by an attacker): "
            f"uninstall it now, install litellm=={pinned or '<a safe version>'}, and rotate every credential "
            "this machine holds",
        )
    if pinned is None:
        return Check("ok", "litellm", f"{installed} (rxagents' pin is unknown: rxagents is not installed)")
    if installed != pinned:
        return Check("warn", "litellm", f"{installed} installed; rxagents is tested with litellm=={pinned}")
    return Check("ok", "litellm", f"{installed}, the version rxagents pins; not a known-bad release")


def check_pth(dirs: Iterable[Path]) -> Check:
    """Whether a ``litellm_init.pth`` start-up hook sits in any site-packages directory."""
    searched = list(dict.fromkeys(dirs))
    found = [d / _BAD_PTH for d in searched if (d / _BAD_PTH).exists()]
    if found:
        paths = ", ".join(str(p) for p in found)
        return Check(
            "fail", _BAD_PTH,
            f"found {paths}: it runs code at every Python start-up and was planted by the malicious litellm "
            "1.82.7/1.82.8; delete it, reinstall litellm, and rotate credentials",
        )
    dirs_text = f"{len(searched)} site-packages director{'y' if len(searched) == 1 else 'ies'}"
    return Check("ok", _BAD_PTH, f"absent from {dirs_text}")


# --- environment ------------------------------------------------------------------------------------------------


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pinned_litellm() -> str | None:
    """The exact litellm version rxagents' metadata requires, if rxagents is installed."""
    try:
        requires = importlib.metadata.requires("rxagents") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        match = re.fullmatch(r"litellm\s*==\s*([\w.+-]+)\s*", requirement)
        if match:
            return match.group(1)
    return None


def _site_dirs() -> list[Path]:
    """Every site-packages directory this interpreter reads ``.pth`` files from."""
    candidates = [*site.getsitepackages(), site.getusersitepackages()]
    paths = sysconfig.get_paths()
    candidates += [paths["purelib"], paths["platlib"]]
    candidates += [p for p in sys.path if p.rstrip("/\\").endswith(("site-packages", "dist-packages"))]
    return [Path(p) for p in dict.fromkeys(candidates) if Path(p).is_dir()]


def run_checks(
    model: str | None, *, api_base: str | None, env: Mapping[str, str], timeout: float = 3.0
) -> list[Check]:
    """Every check, in report order."""
    return [
        check_model(model, api_base=api_base, env=env),
        check_streaming(model, api_base=api_base, env=env),
        check_keys(env, endpoint=_endpoint(api_base, env)[0] is not None),
        check_endpoint(api_base, env=env, model=model, timeout=timeout),
        check_litellm(_installed("litellm"), _pinned_litellm()),
        check_pth(_site_dirs()),
    ]


_LABELS: Mapping[Status, str] = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def format_report(checks: Sequence[Check]) -> str:
    """The checklist: one line per check, then a summary."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        head = f"  [{_LABELS[c.status]}]{' ' * (5 - len(c.status))}{c.name:<{width}}  "
        body = textwrap.wrap(c.detail, width=max(40, 110 - len(head)), break_on_hyphens=False) or [""]
        lines.append(head + body[0])
        lines.extend(" " * len(head) + rest for rest in body[1:])
    failures = sum(c.status == "fail" for c in checks)
    warnings = sum(c.status == "warn" for c in checks)
    lines.append("")
    lines.append(f"{failures} failure{'s' * (failures != 1)}, {warnings} warning{'s' * (warnings != 1)}.")
    return "\n".join(lines)


def doctor_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents doctor``: print the checklist; exit status 1 if any check failed, else 0."""
    from rxagents import _cli_args

    parser = argparse.ArgumentParser(
        prog="rxagents doctor",
        description="Check rxagents' configuration, keys, endpoint and litellm install.",
        epilog=_cli_args.EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default=None, help="the model_name to check (default: what Agent() would use)")
    parser.add_argument("--api-base", default=None, help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    parser.add_argument("--timeout", type=_cli_args.seconds(positive=True), default=3.0,
                        help="seconds to wait for the endpoint, > 0 (default 3)")  # fmt: skip
    args = parser.parse_args(argv)

    rxagents_version = _installed("rxagents") or "(not installed)"
    print(f"rxagents doctor: rxagents {rxagents_version}, Python {sys.version.split()[0]} ({sys.executable})\n")
    checks = run_checks(args.model, api_base=args.api_base, env=os.environ, timeout=args.timeout)
    print(format_report(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(doctor_main())
