"""SilenceWatch: which silence limit runs when, for runs and for the timeout operators alike."""

from __future__ import annotations

from rxagents._core.silence import Silence, SilenceWatch, limit

FIRST, THEN = Silence(60, "first_token"), Silence(30, "stall")


def test_the_first_limit_runs_until_the_start_then_the_other_from_each_item() -> None:
    watch = SilenceWatch(FIRST, THEN)
    assert watch.arm() == FIRST
    assert watch.seen() and watch.limit == THEN and watch.started
    assert watch.seen(starts=False) and watch.limit == THEN  # once started, every item re-arms
    assert watch.arm() == FIRST and not watch.started  # a new request waits for its first output again


def test_an_item_that_does_not_start_the_stream_keeps_the_first_deadline() -> None:
    watch = SilenceWatch(FIRST, None)
    watch.arm()
    assert not watch.seen(starts=False) and watch.limit == FIRST
    assert watch.seen(starts=True) and watch.limit is None  # started: no limit any more


def test_an_item_that_ends_the_stream_stops_the_watch() -> None:
    watch = SilenceWatch(FIRST, THEN)
    watch.arm()
    assert watch.seen(ends=True) and watch.limit is None


def test_no_seconds_is_no_limit() -> None:
    assert limit(None, "stall") is None and limit(2.5, "gap") == Silence(2.5, "gap")
