"""supports_streaming and `rxagents doctor` (rxagents/_doctor.py). No internet: endpoints are the local server."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from rxagents import _doctor
from rxagents._doctor import (
    check_endpoint,
    check_keys,
    check_litellm,
    check_model,
    check_pth,
    check_streaming,
    doctor_main,
    supports_streaming,
)
from rxagents.errors import ConfigurationError
from rxagents.testing._server import LocalModelServer

FAKE_KEY = "sk-fake-DO-NOT-PRINT-0123456789"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """doctor_main looks at an empty site-packages directory instead of the real ones."""
    monkeypatch.setattr(_doctor, "_site_dirs", lambda: [tmp_path])
    return tmp_path


# --- supports_streaming


def test_offline_model_streams() -> None:
    assert supports_streaming("offline") is True


def test_offline_model_with_suffix_streams() -> None:
    assert supports_streaming("offline/anything") is True


def test_known_streaming_chat_model() -> None:
    assert supports_streaming("gpt-4o-mini") is True


def test_model_litellm_marks_as_not_native_streaming() -> None:
    assert supports_streaming("o1-pro") is False


def test_embedding_model_does_not_stream() -> None:
    assert supports_streaming("text-embedding-3-small") is False


def test_model_unknown_to_litellm_is_not_confirmed() -> None:
    assert supports_streaming("openai/no-such-model-rxagents-test") is False


def test_known_bad_litellm_is_never_imported_to_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_doctor, "_installed", lambda dist: "1.82.8")
    monkeypatch.setattr(_doctor, "import_litellm", lambda: pytest.fail("litellm was imported"))
    with pytest.raises(ConfigurationError, match="known-malicious"):
        supports_streaming("gpt-4o-mini")


def test_offline_answer_does_not_need_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_doctor, "import_litellm", lambda: pytest.fail("litellm was imported"))
    assert supports_streaming("offline") is True


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_model_name_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="model_name must be a non-empty string"):
        supports_streaming(bad)


# --- model resolution


def test_model_offline_is_ok() -> None:
    check = check_model("offline", api_base=None, env={})
    assert (check.status, "offline model" in check.detail) == ("ok", True)


def test_model_without_key_falls_back_with_a_warning_naming_the_variable() -> None:
    check = check_model("gpt-4o-mini", api_base=None, env={})
    assert check.status == "warn"
    assert "offline model" in check.detail and "OPENAI_API_KEY" in check.detail


def test_openai_model_with_key_goes_to_the_direct_backend() -> None:
    check = check_model("gpt-4o-mini", api_base=None, env={"OPENAI_API_KEY": FAKE_KEY})
    assert check.status == "ok"
    assert "the direct backend" in check.detail and "https://api.openai.com/v1" in check.detail
    assert "OPENAI_API_KEY is set" in check.detail and FAKE_KEY not in check.detail


def test_a_direct_provider_names_its_variable() -> None:
    check = check_model("groq/llama-3.1-8b-instant", api_base=None, env={"GROQ_API_KEY": FAKE_KEY})
    assert check.status == "ok" and "the direct backend" in check.detail and "GROQ_API_KEY is set" in check.detail
    assert "'llama-3.1-8b-instant'" in check.detail and FAKE_KEY not in check.detail


def test_other_providers_and_the_litellm_prefix_go_to_litellm() -> None:
    check = check_model("anthropic/claude-3-5-haiku-latest", api_base=None, env={"ANTHROPIC_API_KEY": FAKE_KEY})
    assert check.status == "ok" and "-> litellm" in check.detail and "ANTHROPIC_API_KEY is set" in check.detail
    check = check_model("litellm/gpt-4o-mini", api_base=None, env={"OPENAI_API_KEY": FAKE_KEY})
    assert check.status == "ok" and "-> litellm" in check.detail and "OPENAI_API_KEY is set" in check.detail


def test_model_with_endpoint_is_sent_as_given_to_the_direct_backend() -> None:
    check = check_model("my-model", api_base=None, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert check.status == "ok" and "the direct backend" in check.detail
    assert "'my-model'" in check.detail and "OPENAI_BASE_URL" in check.detail


def test_unknown_model_fails() -> None:
    assert check_model("no-such-family", api_base=None, env={}).status == "fail"


def test_streaming_check_asks_about_the_requested_model_when_falling_back() -> None:
    check = check_streaming("o1-pro", api_base=None, env={})
    assert check.status == "warn"
    assert "'o1-pro' does not stream natively" in check.detail and "offline model" in check.detail


def test_streaming_of_an_endpoint_model_unknown_to_litellm_is_not_checked() -> None:
    check = check_streaming("my-model", api_base="http://127.0.0.1:9/v1", env={})
    assert check.status == "skip" and "'my-model'" in check.detail


def test_streaming_check_of_offline_model_is_ok() -> None:
    assert check_streaming("offline", api_base=None, env={}).status == "ok"


# --- keys


def test_keys_report_names_of_set_keys_never_values() -> None:
    check = check_keys({"OPENAI_API_KEY": FAKE_KEY, "ANTHROPIC_API_KEY": FAKE_KEY + "x"})
    assert check.status == "ok"
    assert "ANTHROPIC_API_KEY, OPENAI_API_KEY" in check.detail
    assert FAKE_KEY not in check.detail


def test_no_keys_is_a_warning() -> None:
    check = check_keys({})
    assert check.status == "warn" and "offline model" in check.detail


def test_no_keys_with_an_endpoint_is_fine() -> None:
    assert check_keys({}, endpoint=True).status == "ok"


def test_empty_key_is_a_warning() -> None:
    check = check_keys({"OPENAI_API_KEY": ""})
    assert check.status == "warn" and "set but empty: OPENAI_API_KEY" in check.detail


def test_quoted_key_is_a_warning_without_its_value() -> None:
    check = check_keys({"OPENAI_API_KEY": f'"{FAKE_KEY}"'})
    assert check.status == "warn" and "OPENAI_API_KEY" in check.detail
    assert FAKE_KEY not in check.detail


# --- endpoint


def test_endpoint_not_configured_is_skipped() -> None:
    assert check_endpoint(None, env={}).status == "skip"


def test_reachable_endpoint_lists_its_models(model_server: LocalModelServer) -> None:
    check = check_endpoint(model_server.url, env={})
    assert check.status == "ok"
    assert "test-model" in check.detail


def test_endpoint_from_environment(model_server: LocalModelServer) -> None:
    check = check_endpoint(None, env={"OPENAI_BASE_URL": model_server.url})
    assert check.status == "ok"


def test_endpoint_not_serving_the_model_warns(model_server: LocalModelServer) -> None:
    check = check_endpoint(model_server.url, env={}, model="openai/other-model")
    assert check.status == "warn" and "'other-model'" in check.detail


def test_endpoint_serving_the_model_is_ok(model_server: LocalModelServer) -> None:
    assert check_endpoint(model_server.url, env={}, model="openai/test-model").status == "ok"


def test_endpoint_without_models_route_warns(model_server: LocalModelServer) -> None:
    check = check_endpoint(model_server.url + "/wrong", env={})
    assert check.status == "warn" and "404" in check.detail


def test_unreachable_endpoint_fails() -> None:
    check = check_endpoint(f"http://127.0.0.1:{_closed_port()}/v1", env={}, timeout=2)
    assert check.status == "fail" and "cannot reach" in check.detail


def test_endpoint_that_is_not_http_fails() -> None:
    check = check_endpoint("127.0.0.1:8000/v1", env={})
    assert check.status == "fail" and "http(s)" in check.detail


def test_endpoint_credentials_in_url_are_not_shown() -> None:
    check = check_endpoint(f"http://user:hunter2@127.0.0.1:{_closed_port()}/v1?token=abc", env={}, timeout=2)
    assert "hunter2" not in check.detail and "abc" not in check.detail
    assert "127.0.0.1" in check.detail


def test_endpoint_with_a_key_never_shows_it(model_server: LocalModelServer) -> None:
    check = check_endpoint(model_server.url, env={"OPENAI_API_KEY": FAKE_KEY})
    assert check.status == "ok"
    assert FAKE_KEY not in check.detail


# --- litellm install


def test_pinned_litellm_is_ok() -> None:
    assert check_litellm("1.110.2", "1.110.2").status == "ok"


@pytest.mark.parametrize("bad", ["1.82.7", "1.82.8"])
def test_known_bad_litellm_fails(bad: str) -> None:
    check = check_litellm(bad, "1.110.2")
    assert check.status == "fail" and "malicious" in check.detail


def test_other_litellm_version_warns() -> None:
    check = check_litellm("1.111.0", "1.110.2")
    assert check.status == "warn" and "1.110.2" in check.detail


def test_missing_litellm_fails() -> None:
    check = check_litellm(None, "1.110.2")
    assert check.status == "fail" and "litellm==1.110.2" in check.detail


def test_pth_hook_found_fails(tmp_path: Path) -> None:
    (tmp_path / "litellm_init.pth").write_text("import os\n")
    check = check_pth([tmp_path])
    assert check.status == "fail" and str(tmp_path / "litellm_init.pth") in check.detail


def test_no_pth_hook_is_ok(tmp_path: Path) -> None:
    (tmp_path / "other.pth").write_text("/somewhere\n")
    assert check_pth([tmp_path]).status == "ok"


# --- the command


def test_doctor_exits_zero_and_prints_a_checklist(hermetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = doctor_main(["--model", "offline"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("model", "streaming", "keys", "endpoint", "litellm", "litellm_init.pth"):
        assert re.search(rf"^  \[\w+\] +{re.escape(name)} ", out, re.MULTILINE), name
    assert "0 failures" in out


def test_doctor_never_prints_key_values(
    hermetic: Path, model_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    code = doctor_main(["--model", "test-model", "--api-base", model_server.url])
    captured = capsys.readouterr()
    assert code == 0
    assert "OPENAI_API_KEY" in captured.out
    assert FAKE_KEY not in captured.out + captured.err
    assert FAKE_KEY[-8:] not in captured.out + captured.err


def test_doctor_exits_non_zero_on_a_failure(hermetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (hermetic / "litellm_init.pth").write_text("import os\n")
    code = doctor_main(["--model", "offline"])
    assert code == 1
    assert "[FAIL]" in capsys.readouterr().out


def test_doctor_exits_non_zero_when_the_endpoint_is_down(
    hermetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doctor_main(["--api-base", f"http://127.0.0.1:{_closed_port()}/v1", "--timeout", "2"])
    assert code == 1
    assert "cannot reach" in capsys.readouterr().out


def test_doctor_rejects_a_non_positive_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        doctor_main(["--timeout", "0"])
    assert exc.value.code == 2
    assert "argument --timeout: must be a finite number of seconds > 0, got '0'" in capsys.readouterr().err
