"""The unit status: every condition that applies, ranked as ops ranks them, in one line.

The charm gathers the facts of the hook (its :class:`charm.HookContext`, the workload's
answer, what the forwarding gauges and the Grafana probes say); this module turns them into
statuses and picks the one shown. Pure functions over plain values, so the wording and the
ranking are testable without a hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import ops

import exchange
import health
from charms.grafana_agent_bridge.v0.remote_data import Ignored
from datasources import Snapshot, waiting_for

# How many dropped remote values the status names before "and N more" (all are logged).
IGNORED_SHOWN = 2
# ops's status priority: the highest is shown.
STATUS_RANK = {"error": 5, "blocked": 4, "maintenance": 3, "waiting": 2, "active": 1}


def top(statuses: list[ops.StatusBase], ignored: Iterable[Ignored]) -> ops.StatusBase:
    """The highest-priority status (the first among equals, as ops picks), naming what was
    ignored in this hook."""
    chosen = max(statuses, key=lambda s: STATUS_RANK.get(s.name, 0))
    named = [str(item) for item in ignored]
    if not named:
        return chosen
    text = "ignored " + "; ".join(named[:IGNORED_SHOWN])
    if len(named) > IGNORED_SHOWN:
        text += f" and {len(named) - IGNORED_SHOWN} more"
    message = f"{chosen.message}; {text}" if chosen.message else text
    return ops.StatusBase.from_name(chosen.name, message)


def with_datasources(
    statuses: list[ops.StatusBase],
    later: list[ops.StatusBase],
    snapshot: Snapshot,
    active_tail: str,
) -> list[ops.StatusBase]:
    """``statuses``, then the datasource waits, then ``later``, then Active if nothing waits.

    ops shows the highest priority, the first added among equals: a workload Waiting goes
    after the datasource waits, which say more while those exist.
    """
    statuses = list(statuses)
    if snapshot.record is None or snapshot.live_units is None:
        statuses.append(ops.WaitingStatus("waiting for the peer relation"))
        return statuses + later
    waits: list[str] = []
    missing = snapshot.planned_units - len(snapshot.live_units)
    if missing > 0:
        waits.append(f"{missing} planned unit(s) to join")
    for waiting in waiting_for(snapshot.record, snapshot.answers, snapshot.live_units):
        units = ", ".join(str(n) for n in waiting.missing_units)
        plural = "s" if len(waiting.missing_units) > 1 else ""
        waits.append(f"UIDs from grafana {waiting.app} for unit{plural} {units}")
    if waits:
        statuses.append(ops.WaitingStatus("waiting for " + "; ".join(waits)))
    statuses += later
    if waits:
        return statuses
    published = len(exchange.entries(snapshot.record))
    grafanas = len(snapshot.answers)
    if grafanas == 0:
        message = "no Grafana related"
    else:
        message = f"{published} datasource(s) published for {grafanas} Grafana(s)"
    statuses.append(ops.ActiveStatus(f"{message}; {active_tail}" if active_tail else message))
    return statuses


def forwarding_problems(
    forwarding: health.ForwardingHealth | None, names: Mapping[str, str]
) -> list[str]:
    """One line per forwarding target that is too far behind.

    A target is named by its related unit (``names``: the bridge's target name -> unit): the
    bridge's own target name is derived from the URL, which may carry credentials, so it is
    never shown.
    """
    if forwarding is None:
        return []
    return [
        health.describe_problem(
            target, names.get(target.name, "(not related)"), forwarding.wal_bytes
        )
        for target in forwarding.targets
        if target.degraded()
    ]


def forwarding_summary(forwarding: health.ForwardingHealth | None) -> str:
    if forwarding is None:
        return "forwarding state unknown"
    if not forwarding.targets:
        return ""
    return health.describe_ok(forwarding)
