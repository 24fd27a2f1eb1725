"""The unit status tells the truth about forwarding and about the related Grafanas.

"Active" while an upstream has been down for hours, or while Grafana cannot be reached, is
what an operator must not see: these tests run the charm under ops.testing with the fake
machine reporting what the bridge's ``/metrics`` and each Grafana's ``/api/health`` would say.
"""

from __future__ import annotations

import json
import time

import pytest
from charm_builders import grafana, peers
from ops import testing

from health import ForwardingHealth, TargetHealth, display_url, parse_forwarding
from humanize import count, duration, size
from remote_write import bridge_target_name
from tests.fake_workload import FakeWorkload

MIMIR_URL = "http://10.9.0.2:9009/api/v1/push"


def upstream(url: str = MIMIR_URL) -> testing.Relation:
    return testing.Relation(
        "send-remote-write",
        remote_app_name="mimir",
        remote_units_data={0: {"remote_write": json.dumps({"url": url})}},
    )


def installed(ctx, machine: FakeWorkload, *relations: testing.RelationBase) -> testing.State:
    """A leader unit with the snap installed and settled."""
    state = testing.State(leader=True, relations={peers(), *relations})
    return ctx.run(ctx.on.install(), state)


# -- humanised figures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m0s"), (7980, "2h13m"), (3 * 86400 + 4 * 3600 + 5, "3d4h")],
)
def test_durations_keep_their_two_largest_units(seconds: float, text: str):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (1.2 * 2**30, "1.2 GiB")],
)
def test_sizes_use_binary_units(nbytes: float, text: str):
    assert size(nbytes) == text


def test_counts_and_bad_figures():
    assert count(950) == "950"
    assert count(1_234_567) == "1.2M"
    assert duration(float("nan")) == size(-1) == count(float("inf")) == "?"


def test_status_urls_lose_credentials_and_queries():
    assert display_url("https://admin:s3cret@grafana.lan:3000/g/?token=abc#x") == (
        "https://grafana.lan:3000/g/"
    )
    assert display_url("http://[fd00::1]:3000") == "http://[fd00::1]:3000"


def test_unreadable_metric_lines_are_skipped_not_fatal():
    page = (
        "# HELP bridge_forward_lag_seconds x\n"
        'bridge_forward_lag_seconds{target="a\\"b"} 42\n'
        'bridge_forward_lag_seconds{target="c"} not-a-number\n'
        'bridge_forward_samples_pending{target="a\\"b"} NaN\n'
        "bridge_forward_lag_seconds{target=\n"
        "bridge_store_wal_bytes 1024\n"
    )
    parsed = parse_forwarding(page)
    assert parsed.targets == [TargetHealth('a"b', lag_seconds=42.0)]
    assert parsed.wal_bytes == 1024
    assert parse_forwarding("\x00garbage{{{").targets == []


# -- forwarding -----------------------------------------------------------------------------


def test_an_upstream_down_for_hours_is_not_active(ctx, machine: FakeWorkload):
    state = installed(ctx, machine, upstream())
    machine.forwarding = ForwardingHealth(
        [
            TargetHealth(
                bridge_target_name(MIMIR_URL),
                pending_samples=1_234_567,
                lag_seconds=2 * 3600 + 13 * 60 + 5,
                last_delivery=time.time() - 2 * 3600,
            )
        ],
        wal_bytes=1.2 * 2**30,
    )
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.WaitingStatus(
        "upstream mimir/0 unreachable, 2h13m behind, 1.2M samples queued (WAL 1.2 GiB)"
    )


def test_a_slow_but_delivering_upstream_is_named_slow(ctx, machine: FakeWorkload):
    state = installed(ctx, machine, upstream())
    machine.forwarding = ForwardingHealth(
        [TargetHealth(bridge_target_name(MIMIR_URL), 5000, 601, last_delivery=time.time())]
    )
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.WaitingStatus(
        "upstream mimir/0 slow, 10m1s behind, 5.0k samples queued"
    )


def test_healthy_forwarding_is_summarised_in_active(ctx, machine: FakeWorkload):
    state = installed(ctx, machine, upstream())
    machine.forwarding = ForwardingHealth(
        [TargetHealth(bridge_target_name(MIMIR_URL), 40, 12.5, last_delivery=time.time())]
    )
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.ActiveStatus(
        "no Grafana related; forwarding to 1 upstream(s), 12s behind at most"
    )
    # Back to health after an outage: the status recovers by itself.
    machine.forwarding = ForwardingHealth(
        [TargetHealth(bridge_target_name(MIMIR_URL), 0, 0, last_delivery=time.time())]
    )
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.ActiveStatus(
        "no Grafana related; forwarding to 1 upstream(s), caught up"
    )


def test_unreadable_metrics_say_unknown_instead_of_failing_the_hook(ctx, machine: FakeWorkload):
    state = installed(ctx, machine, upstream())
    machine.forwarding = None
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.ActiveStatus("no Grafana related; forwarding state unknown")


def test_a_target_url_with_credentials_is_never_shown(ctx, machine: FakeWorkload):
    url = "http://user:hunter2@10.9.0.3:9009/api/v1/push"
    state = installed(ctx, machine, upstream(url))
    machine.forwarding = ForwardingHealth(
        [
            TargetHealth(bridge_target_name(url), 10, 900, 0),
            TargetHealth("configured-by-hand", 10, 900, 0),
        ]
    )
    out = ctx.run(ctx.on.update_status(), state)
    message = out.unit_status.message
    assert "hunter2" not in message and "user" not in message
    assert message.startswith("upstream mimir/0 unreachable, 15m0s behind")
    assert "upstream (not related) unreachable" in message


# -- Grafana reachability -------------------------------------------------------------------


def test_an_unreachable_grafana_is_reported_without_credentials(ctx, machine: FakeWorkload):
    base = "https://admin:pw@grafana-a.lan:3000"
    source = grafana("grafana-a", "g-a", [0], base_url=base)
    state = installed(ctx, machine, source)
    machine.grafana_problems[base] = f"unreachable at {display_url(base)} (ConnectTimeout)"
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.WaitingStatus(
        "grafana grafana-a unreachable at https://grafana-a.lan:3000 (ConnectTimeout)"
    )
    assert "pw" not in out.unit_status.message
    del machine.grafana_problems[base]
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.ActiveStatus("1 datasource(s) published for 1 Grafana(s)")


def test_grafana_probes_are_bounded_per_hook(ctx, machine: FakeWorkload):
    sources = [
        grafana(f"grafana-{i}", f"g-{i}", [0], base_url=f"http://grafana-{i}.lan:3000")
        for i in range(6)
    ]
    state = installed(ctx, machine, *sources)
    machine.grafana_probes.clear()
    ctx.run(ctx.on.update_status(), state)
    assert 1 <= len(machine.grafana_probes) <= 4
