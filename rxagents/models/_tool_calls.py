"""``ToolCallSpec``: a tool call a scripted model makes — the offline model, or the local test server's replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rxagents._validate import check_int, check_str, fail

__all__ = ["ToolCallSpec"]


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """One tool call a scripted model "decides" to make.

    Streamed the way OpenAI does it: a first delta for the call carries its ``id`` and the function ``name``
    with empty arguments, then the JSON ``arguments`` follow in ``pieces`` roughly equal slices, so a client
    must concatenate them to get valid JSON.

    Args:
        name: the function's name.
        arguments: the arguments as a JSON text, or a mapping (serialised with ``json.dumps``).
        id: the call's id; default ``<prefix><n>``, ``n`` the call's position in the reply.
        pieces: how many slices the arguments arrive in (at least 1).

    Example::

        OfflineModel(tool_calls=(ToolCallSpec("get_weather", {"city": "Paris"}),))
        Reply(tokens=(), tool_calls=(ToolCallSpec("search", '{"query": "streams"}', pieces=5),))
    """

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None
    pieces: int = 3

    def __post_init__(self) -> None:
        check_str("name", self.name)
        if not isinstance(self.arguments, str | Mapping):
            fail("arguments", "a JSON text or a mapping", self.arguments)
        check_str("id", self.id, none="a generated id")
        check_int("pieces", self.pieces)

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON text the model streams."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))

    def call_id(self, n: int, prefix: str = "call_") -> str:
        """The call's id: :attr:`id`, else ``prefix`` and its position ``n``."""
        return self.id if self.id is not None else f"{prefix}{n}"

    def argument_pieces(self) -> list[str]:
        """:attr:`arguments_json` cut into up to :attr:`pieces` consecutive slices (none for empty arguments)."""
        text = self.arguments_json
        size = max(1, -(-len(text) // self.pieces))
        return [text[i : i + size] for i in range(0, len(text), size)]
