"""Failures both HTTP backends share: Retry-After in all its forms."""

from __future__ import annotations

from typing import Any

import pytest

from rxagents.models._http_errors import retry_after

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),  # OpenAI's milliseconds win
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": DATE}, 30.0),  # HTTP-date, against Date
        ({"Retry-After": "Wednesday, 21-Oct-15 07:29:00 GMT", "Date": DATE}, 60.0),  # the obsolete RFC 850 form
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT", "Date": DATE}, 0.0),  # already past: no wait
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),  # a date without Date: not honoured
        ({"Retry-After": "soon", "Date": DATE}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Date": DATE}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after(headers: Any, seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_reads_case_insensitive_header_classes() -> None:
    import httpx
    from multidict import CIMultiDict

    for headers in (httpx.Headers({"RETRY-AFTER": "3"}), CIMultiDict({"RETRY-AFTER": "3"})):
        assert retry_after(headers) == 3.0
