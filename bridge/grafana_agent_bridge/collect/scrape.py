"""Scraping a Prometheus exposition endpoint (an optional ``collect.scrape`` target)."""

from __future__ import annotations

import urllib.error
import urllib.request

from .. import __version__
from ..redact import redact_url, scrub
from . import exposition
from .families import Collected

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
MAX_BYTES = 64 << 20


class ScrapeError(Exception):
    pass


class ScrapeCollector:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._shown = redact_url(url)
        """The URL as errors show it: credentials masked."""

    def collect(self) -> Collected:
        """Fetch and parse the page.

        Raises:
            ScrapeError: the target is down, answers non-2xx, or sends a malformed page.
        """
        req = urllib.request.Request(
            self.url,
            headers={
                "Accept": ACCEPT,
                "User-Agent": f"grafana-agent-bridge/{__version__}",
                "X-Prometheus-Scrape-Timeout-Seconds": f"{self.timeout_s:g}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = resp.read(MAX_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ScrapeError(
                f"scrape of {self._shown} failed: {scrub(str(e), self.url)}"
            ) from None
        if len(body) > MAX_BYTES:
            raise ScrapeError(f"scrape of {self._shown}: body exceeds {MAX_BYTES} bytes")
        try:
            return exposition.parse(body.decode("utf-8"))
        except (UnicodeDecodeError, exposition.ExpositionError) as e:
            raise ScrapeError(f"scrape of {self._shown}: {e}") from None
