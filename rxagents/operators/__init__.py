"""Composable operators on ``Observable[TokenEvent]`` streams, for use in ``.pipe(...)``.

One concept per private module; this facade is the public surface. Every operator is a factory:
building one has no side effects, each subscription gets its own state, and every time-based
operator takes ``scheduler=`` (default: the loop scheduler of the run).

Families (see docs/operators-*.md):

- text: :func:`running_text`, :func:`collect_text`, :func:`text_only`, :func:`only`, :func:`exclude`
- buffering and chunking: :func:`buffer_tokens`, :func:`buffer_chars`, :func:`buffer_time`,
  :func:`buffer_time_or_count`, :func:`chunk_by`
- pacing: :func:`pace`, :func:`throttle_text`
- callbacks, logging, progress: :func:`tap_safe`, :func:`log_to_file`, :func:`log_to`, :func:`track_progress`
- guards: :func:`first_token_timeout`, :func:`gap_timeout`, :func:`usage_meter`, :func:`budget`,
  :func:`assert_well_formed`
- retries: :func:`retry`
- bridges: :func:`to_async_iter`, :func:`from_async_iter`
"""

from __future__ import annotations

from rxagents.operators._bridge import ObservableIterator, from_async_iter, to_async_iter
from rxagents.operators._buffer import buffer_chars, buffer_time, buffer_time_or_count, buffer_tokens
from rxagents.operators._callbacks import CallbackStats, tap_safe
from rxagents.operators._chunk import chunk_by
from rxagents.operators._errors import (
    BudgetExceeded,
    CallbackError,
    RetryError,
    RetryExhausted,
    SlowConsumerError,
    StreamGrammarError,
    StreamTimeout,
    TokensAlreadyDelivered,
)
from rxagents.operators._guards import (
    UsageMeter,
    UsageTotals,
    assert_well_formed,
    budget,
    first_token_timeout,
    gap_timeout,
    usage_meter,
)
from rxagents.operators._logging import format_event, log_to, log_to_file
from rxagents.operators._pace import pace, throttle_text
from rxagents.operators._progress import progress_columns, track_progress
from rxagents.operators._retry import ExponentialBackoff, is_transient, retry
from rxagents.operators._text import collect_text, exclude, only, running_text, text_only

__all__ = [
    "BudgetExceeded",
    "CallbackError",
    "CallbackStats",
    "ExponentialBackoff",
    "ObservableIterator",
    "RetryError",
    "RetryExhausted",
    "SlowConsumerError",
    "StreamGrammarError",
    "StreamTimeout",
    "TokensAlreadyDelivered",
    "UsageMeter",
    "UsageTotals",
    "assert_well_formed",
    "budget",
    "buffer_chars",
    "buffer_time",
    "buffer_time_or_count",
    "buffer_tokens",
    "chunk_by",
    "collect_text",
    "exclude",
    "first_token_timeout",
    "format_event",
    "from_async_iter",
    "gap_timeout",
    "is_transient",
    "log_to",
    "log_to_file",
    "only",
    "pace",
    "progress_columns",
    "retry",
    "running_text",
    "tap_safe",
    "text_only",
    "throttle_text",
    "to_async_iter",
    "track_progress",
    "usage_meter",
]
