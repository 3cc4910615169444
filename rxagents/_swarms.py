"""What rxagents accepts of swarms' API only so that code written for swarms runs unchanged.

None of these parameters changes a streaming run here, so each is accepted only where doing nothing with it is
right: a constructor option with no effect on streaming, or a ``run`` parameter at its "unused" value. Anything
else raises :class:`~rxagents.errors.ConfigurationError` naming it (a typo, or a feature rxagents does not have,
must not be ignored). The tables are in ``docs/migration.md``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from rxagents._validate import check_keywords, fail, shown
from rxagents.errors import ConfigurationError

__all__ = ["AGENT_OPTIONS", "AGENT_RUN", "WORKFLOW_OPTIONS", "WORKFLOW_RUN", "check_run_arguments"]

#: swarms ``Agent(...)`` options accepted with no effect on streaming.
AGENT_OPTIONS = frozenset({
    "interactive", "autosave", "dashboard", "dynamic_temperature_enabled", "saved_state_path",
    "user_name", "context_length", "output_type", "tools", "agent_description",
    "description", "docs", "dynamic_context_window", "artifacts_on", "persistent_memory",
    "auto_generate_prompt", "tool_system_prompt", "return_step_meta", "plan_enabled", "top_p",
})

#: swarms ``ConcurrentWorkflow(...)``/``SequentialWorkflow(...)`` options accepted with no effect on streaming.
WORKFLOW_OPTIONS = frozenset({
    "description", "output_type", "autosave", "auto_save", "verbose", "return_str_on", "auto_generate_prompts",
    "shared_memory_system", "team_awareness", "multi_agent_collab_prompt", "flow", "id",
})

# swarms' run parameters that rxagents has no use for: the value that means "not used", and why another is refused.
_UNUSED: Mapping[str, tuple[object, str]] = {
    "img": (None, "rxagents sends the model text only; describe the image in the task"),
    "imgs": (None, "rxagents sends the model text only; describe the images in the task"),
    "correct_answer": (
        None,
        "rxagents does not re-run the agent until its answer contains it; compare the answer run() returns yourself",
    ),
    "n": (1, "for several answers, call run() once per answer or give a ConcurrentWorkflow that many agents"),
}

#: The extra parameters of swarms' ``Agent.run(task, img=None, imgs=None, correct_answer=None,
#: streaming_callback=None, n=1, *args, **kwargs)`` (and ``arun``) that ``Agent.run``/``arun`` accept unused.
AGENT_RUN = ("img", "imgs", "correct_answer", "n")

#: The extra parameters of swarms' ``SequentialWorkflow.run(task, img=None, imgs=None, *args, **kwargs)`` that the
#: workflows' ``run``/``arun``/``run_result``/``arun_result`` accept unused.
WORKFLOW_RUN = ("img", "imgs")


def check_run_arguments(
    call: str, args: Sequence[object], kwargs: Mapping[str, object], accepted: Collection[str]
) -> None:
    """The arguments of ``call`` (e.g. ``"Agent.run"``) beyond its task and callback: each keyword in ``accepted``
    at its unused value (``None``; ``n=1``), and nothing else.

    Example::

        >>> check_run_arguments("Agent.run", (), {"img": None, "n": 1}, AGENT_RUN)
        >>> check_run_arguments("Agent.run", (), {"img": "cat.png"}, AGENT_RUN)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rxagents.errors.ConfigurationError: img must be None in rxagents, got 'cat.png'; rxagents sends the model ...
    """
    if args:
        raise ConfigurationError(
            f"{call}() takes the task and streaming_callback positionally, got {len(args)} more positional "
            f"argument(s) {shown(tuple(args))}; pass any other parameter by keyword (see the {call} docstring)"
        )
    check_keywords(call, kwargs, accepted, ("task", "streaming_callback"))
    for name, value in kwargs.items():
        unused, why = _UNUSED[name]
        if value is not unused and not (type(value) is type(unused) and value == unused):
            fail(name, f"{unused!r} in rxagents", value, hint=why)
