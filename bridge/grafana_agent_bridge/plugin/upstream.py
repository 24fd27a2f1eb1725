"""The plugin's HTTP client for the server named in the datasource settings.

The plugin holds no data itself: every query goes to a bridge or any Prometheus-compatible server
with the Prometheus HTTP API, the way Grafana's built-in datasource sends it (form POST by
default, GET when ``jsonData.httpMethod`` says so, the same auth headers). The standard library's
urllib is enough and keeps the plugin's dependencies to the ``plugin`` extra.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.plugin.querymodel import QueryModelError, parse_interval_ms

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 256 * 1024 * 1024  # a runaway answer must not exhaust Grafana's host
MAX_CUSTOM_HEADERS = 100


class SettingsError(ValueError):
    """The datasource settings cannot be used; the message names the setting."""


@dataclass(frozen=True)
class DatasourceSettings:
    """What the plugin needs from Grafana's DataSourceInstanceSettings."""

    url: str
    http_method: str = "POST"
    scrape_interval: str = ""
    query_timeout: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    headers: dict[str, str] = field(default_factory=dict)
    custom_query_parameters: str = ""

    @classmethod
    def from_proto(cls, settings: pb.DataSourceInstanceSettings) -> DatasourceSettings:
        """Read url, jsonData and decryptedSecureJsonData as Grafana's datasource does."""
        url = settings.url.strip()
        if not url:
            raise SettingsError("the datasource has no URL")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SettingsError(f"datasource URL {url!r} is not an http(s) URL")
        try:
            json_data = json.loads(settings.jsonData or b"{}") or {}  # "null" means none
        except ValueError as exc:
            raise SettingsError(f"jsonData is not valid JSON: {exc}") from exc
        if not isinstance(json_data, dict):
            raise SettingsError("jsonData must be a JSON object")
        secure = dict(settings.decryptedSecureJsonData)
        headers: dict[str, str] = {}
        if settings.basicAuthEnabled:
            password = secure.get("basicAuthPassword", "")
            token = base64.b64encode(f"{settings.basicAuthUser}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        for index in range(1, MAX_CUSTOM_HEADERS + 1):
            name = json_data.get(f"httpHeaderName{index}")
            if not name:
                break
            headers[str(name)] = secure.get(f"httpHeaderValue{index}", "")
        method = str(json_data.get("httpMethod") or "POST").upper()
        if method not in ("GET", "POST"):
            raise SettingsError(f"jsonData.httpMethod {method!r} is neither GET nor POST")
        query_timeout = str(json_data.get("queryTimeout") or "")
        timeout_s = DEFAULT_TIMEOUT_S
        if query_timeout:
            try:
                timeout_s = parse_interval_ms(query_timeout) / 1000
            except QueryModelError as exc:
                raise SettingsError(f"jsonData.queryTimeout: {exc}") from exc
        return cls(
            url=url.rstrip("/"),
            http_method=method,
            scrape_interval=str(json_data.get("timeInterval") or ""),
            query_timeout=query_timeout,
            timeout_s=timeout_s if timeout_s > 0 else DEFAULT_TIMEOUT_S,
            headers=headers,
            custom_query_parameters=str(json_data.get("customQueryParameters") or ""),
        )


@dataclass(frozen=True)
class Reply:
    """An HTTP answer from the server: status, content type and raw body."""

    status: int
    content_type: str
    body: bytes

    def envelope(self) -> dict[str, object] | None:
        """The Prometheus JSON envelope, or None when the body is not one."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class UpstreamError(Exception):
    """The server could not be reached or did not answer in time (no HTTP status at all)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status  # the HTTP-like status to report to Grafana (502 or 504)


Params = Sequence[tuple[str, str]] | Mapping[str, str]


class Upstream:
    """Calls one Prometheus-compatible server on behalf of one datasource."""

    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings

    def call(
        self,
        path: str,
        params: Params,
        *,
        method: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one API request (``path`` relative to the datasource URL) and return the reply.

        POST sends the parameters form-encoded in the body; GET puts them in the query string.
        """
        verb = (method or self.settings.http_method).upper()
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        encoded = urllib.parse.urlencode(items)
        url = f"{self.settings.url}/{path.lstrip('/')}"
        query = self.settings.custom_query_parameters
        body: bytes | None = None
        headers = {"Accept": "application/json", "User-Agent": "grafana-agent-bridge-plugin"}
        headers.update(self.settings.headers)
        if extra_headers:
            headers.update(extra_headers)
        if verb == "POST":
            body = encoded.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif encoded:
            query = f"{query}&{encoded}" if query else encoded
        if query:
            url = f"{url}?{query}"
        request = urllib.request.Request(url, data=body, headers=headers, method=verb)
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                return Reply(
                    response.status,
                    response.headers.get("Content-Type", ""),
                    response.read(MAX_RESPONSE_BYTES),
                )
        except urllib.error.HTTPError as exc:
            return Reply(
                exc.code, exc.headers.get("Content-Type", ""), exc.read(MAX_RESPONSE_BYTES)
            )
        except TimeoutError as exc:
            raise UpstreamError(f"{verb} {url}: timed out", status=504) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise UpstreamError(f"{verb} {url}: timed out", status=504) from exc
            raise UpstreamError(f"{verb} {url}: {exc.reason}", status=502) from exc
        except (OSError, ValueError) as exc:
            raise UpstreamError(f"{verb} {url}: {exc}", status=502) from exc
