"""Endpoint URLs: what an api_base must be, and how a URL is shown without its credentials."""

from __future__ import annotations

import pytest

from rxagents._urls import api_base_problem, check_api_base, safe_url
from rxagents.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@example.test:8443/v1?key=abc&api-version=2024#frag",
         "https://example.test:8443/v1?key=***&api-version=2024"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://[::1]:8000/v1?access_token=t0k&sig=s1g", "http://[::1]:8000/v1?access_token=***&sig=***"),
        ("http://host/v1?X-Amz-Credential=c&X-Amz-Signature=s&page=2",
         "http://host/v1?X-Amz-Credential=***&X-Amz-Signature=***&page=2"),
        ("http://host:notaport/v1", "<unparseable URL>"),
    ],
)  # fmt: skip
def test_safe_url_drops_user_info_fragment_and_key_like_values(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "https://api.example.test", "HTTP://LOCALHOST:1/v1"])
def test_usable_api_bases(url: str) -> None:
    assert api_base_problem(url) is None
    assert check_api_base(f"  {url} ", parameter="api_base") == url


def test_check_api_base_names_the_parameter_and_hides_a_secret_in_the_value() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_api_base("sk-secret-123456", parameter="api_base", secret="sk-secret-123456")
    assert str(info.value).startswith("api_base='***' is not usable: it is not an http(s) URL")
    with pytest.raises(ConfigurationError, match="api_base must be a URL string"):
        check_api_base(8000, parameter="api_base")
