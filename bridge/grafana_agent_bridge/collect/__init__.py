"""Built-in collection (the embedded default): host metrics, the bridge's own, scrape targets."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from ..config import CollectConfig
from ..metrics import Registry
from .host import HostCollector
from .runner import Collection, Job
from .scrape import ScrapeCollector
from .selfmetrics import SelfCollector

HOST_JOB = "node"
SELF_JOB = "grafana-agent-bridge"

__all__ = ["HOST_JOB", "SELF_JOB", "Collection", "Job", "build_jobs", "describe"]


def _target_instance(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port, as Prometheus's ``instance``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def build_jobs(config: CollectConfig, registry: Registry, self_instance: str) -> list[Job]:
    """The jobs ``config`` switches on; the bridge's own job is labelled ``self_instance``."""
    interval = config.interval.total_seconds()
    jobs: list[Job] = []
    if config.host:
        jobs.append(
            Job(
                HOST_JOB,
                socket.gethostname(),
                HostCollector(rootfs=config.rootfs).collect,
                interval,
            )
        )
    if config.self:
        jobs.append(Job(SELF_JOB, self_instance, SelfCollector(registry).collect, interval))
    for target in config.scrape:
        collector = ScrapeCollector(target.url, config.scrape_timeout(target).total_seconds())
        jobs.append(
            Job(
                target.job_name,
                _target_instance(target.url),
                collector.collect,
                config.scrape_interval(target).total_seconds(),
            )
        )
    return jobs


def describe(config: CollectConfig) -> str:
    """One line saying what is collected, for the start-up banner."""
    parts = []
    if config.host:
        parts.append("this host's CPU, memory, load, filesystems and network (job=node)")
    if config.self:
        parts.append(f"the bridge's own metrics (job={SELF_JOB})")
    if config.scrape:
        parts.append(f"{len(config.scrape)} scrape target(s)")
    if not parts:
        return "Collecting nothing itself (collection is off); waiting for remote write."
    return f"Collecting every {config.interval.total_seconds():g}s: " + "; ".join(parts) + "."
