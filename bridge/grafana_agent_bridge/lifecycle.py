"""Where the daemon is in its life: one state that readiness, the HTTP edge and ingest read.

Starting (listening, the store still opening: API requests get 503 "starting"), serving,
draining (shutdown has begun: new API requests and writes get 503 "shutting down" while those in
progress finish), stopped. The state only moves forward, along ``ALLOWED``; a move that is not
allowed is a bug and raises, so two parts can never disagree about where the daemon is (they
used to keep a flag each: ``ready``, ``stopping``, ``shutting_down``, ``stopped``).
"""

from __future__ import annotations

import enum
import threading


class Phase(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.SERVING, Phase.DRAINING}),
    Phase.SERVING: frozenset({Phase.DRAINING}),
    Phase.DRAINING: frozenset({Phase.STOPPED}),
    Phase.STOPPED: frozenset(),
}
"""The moves a phase may make (a stop during start-up drains without ever serving)."""


class LifecycleError(RuntimeError):
    """A move the lifecycle does not allow (a bug in the caller, never a client's doing)."""


class Lifecycle:
    """The daemon's phase, shared by the parts that answer differently by phase."""

    def __init__(self, phase: Phase = Phase.STARTING) -> None:
        self._phase = phase
        self._lock = threading.Lock()

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def serving(self) -> bool:
        """Ready: ``/-/ready`` answers 200 and the API and remote write are open."""
        return self._phase is Phase.SERVING

    def advance(self, to: Phase) -> None:
        """Move to ``to``; raises ``LifecycleError`` unless ``ALLOWED`` has the move."""
        with self._lock:
            if to not in ALLOWED[self._phase]:
                raise LifecycleError(f"cannot go from {self._phase.value} to {to.value}")
            self._phase = to

    def drain(self) -> bool:
        """Begin shutdown from starting or serving; False when it had already begun."""
        with self._lock:
            if Phase.DRAINING not in ALLOWED[self._phase]:
                return False
            self._phase = Phase.DRAINING
            return True
