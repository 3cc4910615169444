"""Spec: "Rate Limiting", as written; the spec's snippet uses ``Agent`` without importing it, so the import is
added.

Here the ``time.sleep`` is harmless to the stream: ``run()`` calls the callback on the calling thread while the
model is read on rxagents' runtime thread (in swarms it stalled the socket-reading thread). In a pipeline,
``pace(0.05)`` spaces tokens with timers on the event loop instead of sleeping: ``examples/rate_limiting.py``.
"""

import time

from rxagents import Agent


class RateLimitedStreamer:
    def __init__(self, min_interval: float = 0.1):
        self.min_interval = min_interval
        self.last_time = 0

    def callback(self, token: str):
        # Enforce minimum interval between outputs
        current_time = time.time()
        elapsed = current_time - self.last_time

        if elapsed < self.min_interval:
            time.sleep(self.min_interval - elapsed)

        print(token, end="", flush=True)
        self.last_time = time.time()

streamer = RateLimitedStreamer(min_interval=0.05)

agent = Agent(
    model_name="gpt-4o-mini",
    streaming_on=True,
    print_on=False,
)

response = agent.run(
    task="Write story",
    streaming_callback=streamer.callback,
)
