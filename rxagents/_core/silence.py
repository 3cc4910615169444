"""Which silence limit applies when: :class:`SilenceWatch`.

One rule for every silence limit of the library — a run's ``first_token_timeout``/``stall_timeout`` and
the ``first_token_timeout``/``gap_timeout`` operators::

    armed ──(an item that starts the stream)──▶ started ──(each item)──▶ started
      │  first limit, from arming                  then limit, from the last item
      └──(an item that does not start it)──▶ armed, the first deadline kept
    any ──(an item that ends the stream)──▶ stopped

The watch only says which limit runs from when; the caller owns the clock and the timer, and decides what
happens when a limit passes (a run fails its request with :class:`~rxagents.errors.StallTimeout`, the
operators fail the stream with ``StreamTimeout``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Silence", "SilenceWatch", "limit"]


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence limit: at most ``seconds`` without output; ``phase`` names it (``"first_token"``, ``"stall"``,
    ``"gap"``) for the error that reports it."""

    seconds: float
    phase: str


def limit(seconds: float | None, phase: str) -> Silence | None:
    """The limit of ``seconds`` named ``phase``; None (no limit) for None."""
    return None if seconds is None else Silence(seconds, phase)


class SilenceWatch:
    """Which limit runs for a stream (a model request, a subscription); see the module docstring.

    Args:
        first: the limit until the stream starts (None: none).
        then: the limit between items once it started (None: none).

    >>> watch = SilenceWatch(first=Silence(60, "first_token"), then=Silence(30, "stall"))
    >>> watch.arm()
    Silence(seconds=60, phase='first_token')
    >>> watch.seen(), watch.limit
    (True, Silence(seconds=30, phase='stall'))
    """

    __slots__ = ("first", "limit", "started", "then")

    def __init__(self, first: Silence | None, then: Silence | None) -> None:
        self.first = first
        self.then = then
        self.started = False
        #: The limit running now (None: none).
        self.limit: Silence | None = None

    def arm(self) -> Silence | None:
        """Start watching a new stream: the first limit, counted from now."""
        self.started = False
        self.limit = self.first
        return self.limit

    def seen(self, *, starts: bool = True, ends: bool = False) -> bool:
        """Note an item. True: the timer must be set again to :attr:`limit`, counted from now (None: stop it);
        False: keep the running deadline (an item before the start that does not start the stream)."""
        if ends:
            self.limit = None
            return True
        if starts or self.started:
            self.started = True
            self.limit = self.then
            return True
        return False
