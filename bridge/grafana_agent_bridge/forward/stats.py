"""The forwarder's self-metrics, one labelled child per target (shown at ``/metrics``).

Names follow Prometheus's own ``prometheus_remote_storage_*`` vocabulary where the meaning is
the same (sent, retried, failed), so an operator who knows one reads the other.
"""

from __future__ import annotations

from ..metrics import Counter, Gauge, Histogram, Registry


class ForwardStats:
    def __init__(self, registry: Registry) -> None:
        r = registry
        t = ("target",)
        self.sent: Counter = r.counter(
            "bridge_forward_samples_sent_total",
            "Samples delivered upstream (answered 2xx).",
            t,
        )
        self.retried: Counter = r.counter(
            "bridge_forward_samples_retried_total",
            "Samples sent again after a network error, 5xx or 429.",
            t,
        )
        self.failed: Counter = r.counter(
            "bridge_forward_samples_failed_total",
            "Samples the upstream rejected with a non-retryable status (4xx other than 429); "
            "they are dropped.",
            t,
        )
        self.dropped: Counter = r.counter(
            "bridge_forward_samples_dropped_total",
            "Samples that will never be delivered, by reason: rejected (4xx) or retention "
            "(deleted locally before they could be sent).",
            ("target", "reason"),
        )
        self.exemplars_sent: Counter = r.counter(
            "bridge_forward_exemplars_sent_total",
            "Exemplars delivered upstream (answered 2xx), with the samples of their series.",
            t,
        )
        self.exemplars_dropped: Counter = r.counter(
            "bridge_forward_exemplars_dropped_total",
            "Exemplars in requests the upstream rejected with a non-retryable status.",
            t,
        )
        self.resent: Counter = r.counter(
            "bridge_forward_samples_resent_after_restart_total",
            "Samples delivered before an unclean stop and sent again after the restart "
            "(at-least-once delivery: the receiver accepts exact duplicates).",
            t,
        )
        self.metadata: Counter = r.counter(
            "bridge_forward_metadata_sent_total",
            "Metric metadata entries (type, help, unit) delivered; all are re-sent every minute.",
            t,
        )
        self.requests: Counter = r.counter(
            "bridge_forward_requests_total",
            "Remote-write requests by result: 2xx, 4xx, 429, 5xx or network.",
            ("target", "result"),
        )
        self.bytes: Counter = r.counter(
            "bridge_forward_sent_bytes_total",
            "Compressed request bytes delivered upstream.",
            t,
        )
        self.duration: Histogram = r.histogram(
            "bridge_forward_request_duration_seconds",
            "Time of one remote-write request, whatever its result.",
            t,
        )
        self.pending: Gauge = r.gauge(
            "bridge_forward_samples_pending",
            "Samples stored locally and not yet delivered to the target.",
            t,
        )
        self.lag: Gauge = r.gauge(
            "bridge_forward_lag_seconds",
            "Age of the oldest sample not yet delivered (0 when caught up).",
            t,
        )
        self.shards: Gauge = r.gauge(
            "bridge_forward_shards",
            "Parallel senders of the target.",
            t,
        )
        self.last_delivery: Gauge = r.gauge(
            "bridge_forward_last_delivery_timestamp_seconds",
            "Unix time of the last successful request (0: none yet).",
            t,
        )
