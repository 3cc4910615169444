"""The run core: the rules of a run, pure (no asyncio, no reactivex, no clock: time is given to it).

One concept a module; each imports only :mod:`rxagents.events`, :mod:`rxagents.errors` and the standard library,
so every layer above (models, operators, the run drivers in :mod:`rxagents._run`, sinks) can use them:

* :mod:`~rxagents._core.partial` — :class:`PartialText`, the answer text of a stream as its consumers hold it
  (a ``retry`` event discards its run's text);
* :mod:`~rxagents._core.grammar` — :class:`RunGrammar`, the run grammar, defined once;
* :mod:`~rxagents._core.policy` — :class:`RetryPolicy` and its decision (:meth:`RetryPolicy.decide`),
  :func:`is_transient`, :class:`ExponentialBackoff`;
* :mod:`~rxagents._core.silence` — :class:`SilenceWatch`, which silence limit applies when;
* :mod:`~rxagents._core.machine` — :class:`RunMachine`, one run as a state machine (the drivers in
  :mod:`rxagents._run` only do its I/O and scheduling).

Nothing is imported here: :mod:`rxagents.errors` uses :mod:`~rxagents._core.partial`, which must load without
the modules that import :mod:`rxagents.errors`. Import from the submodules.
"""
