"""Guards, one family of operators: silence timeouts, usage metering and budgets, the run-grammar assertion.

Each lives in its own module (:mod:`._timeouts`, :mod:`._usage`, :mod:`._well_formed`); this module gathers
the family (docs/operators-guards.md).
"""

from __future__ import annotations

from rxagents.operators._timeouts import first_token_timeout, gap_timeout
from rxagents.operators._usage import UsageMeter, UsageTotals, budget, usage_meter
from rxagents.operators._well_formed import assert_well_formed

__all__ = [
    "UsageMeter",
    "UsageTotals",
    "assert_well_formed",
    "budget",
    "first_token_timeout",
    "gap_timeout",
    "usage_meter",
]
