"""Store-and-forward to upstream remote-write receivers (COS Prometheus or Mimir).

Delivery is at-least-once and in per-series timestamp order, from a durable cursor into the
local store, so an upstream outage as long as the local retention loses nothing. See
``sender.py`` for how, and ``client.py`` for what each HTTP answer means.
"""

from .manager import ForwardManager
from .progress import consumer_name
from .sender import TargetSender

__all__ = ["ForwardManager", "TargetSender", "consumer_name"]
