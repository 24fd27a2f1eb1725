"""Forwarding to every configured upstream: one ``TargetSender`` each, started and stopped
together by the daemon."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ForwardConfig
from ..metrics import Registry
from ..storage import ForwardSource
from .metadata import METADATA_INTERVAL_S
from .sender import TargetSender
from .stats import ForwardStats

log = logging.getLogger(__name__)

DEFAULT_SHARDS = 4
"""Parallel requests per target. Four keep a Prometheus receiver busy on a small machine; the
per-request cost on our side (protobuf encoding) is what limits the catch-up rate."""


class ForwardManager:
    """Store-and-forward from the local store (``feed``) to ``config.targets``.

    ``state_dir`` (default: the feed's own ``state_dir()``, ``<store path>/forward``) holds a
    small progress file per target that makes the resume after a crash exact (see
    ``sender.py``); without it a restart re-sends from the last durable acknowledgement.
    """

    def __init__(
        self,
        feed: ForwardSource,
        config: ForwardConfig,
        registry: Registry,
        *,
        state_dir: Path | str | None = None,
        shards: int = DEFAULT_SHARDS,
        ack_interval_s: float = 1.0,
        metadata_interval_s: float = METADATA_INTERVAL_S,
    ) -> None:
        self.stats = ForwardStats(registry)
        if state_dir is None:
            state_dir = feed.state_dir()
        state = Path(state_dir) if state_dir is not None else None
        if state is not None:
            state.mkdir(parents=True, exist_ok=True)
        self.senders = [
            TargetSender(
                feed,
                target,
                config,
                self.stats,
                shards=shards,
                ack_interval_s=ack_interval_s,
                metadata_interval_s=metadata_interval_s,
                state_dir=state,
            )
            for target in config.targets
        ]
        self._started = False
        registry.on_read(self._refresh_gauges)

    def _refresh_gauges(self) -> None:
        if self._started:
            for sender in self.senders:
                sender.refresh_gauges()

    def start(self) -> ForwardManager:
        for sender in self.senders:
            sender.start()
        self._started = True
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every sender and persist its position (bounded by ``timeout_s`` each)."""
        self._started = False
        for sender in self.senders:
            try:
                sender.stop(timeout_s)
            except Exception:
                log.exception("forward %s: stopping failed", sender.target.name)

    def caught_up(self) -> bool:
        """Every target has delivered everything stored so far (for tests and status)."""
        return all(s.caught_up for s in self.senders)
