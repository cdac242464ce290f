"""The deployer's side of the proxy's control API (see :mod:`superdan_assets.deploy.proxy`)."""

from __future__ import annotations

import http.client
import json
from typing import Any

from superdan_assets.deploy.result import DeploymentError


class ProxyControlError(DeploymentError):
    """The proxy's control port did not answer, or refused a call."""


class ProxyControl:
    """Switch and drain the proxy's upstream; every call is authenticated with the token."""

    def __init__(
        self, control_port: int, token: str, *, host: str = "127.0.0.1", timeout_s: float = 10.0
    ):
        self.host = host
        self.control_port = control_port
        self._token = token
        self.timeout_s = timeout_s

    def status(self, timeout_s: float | None = None) -> dict[str, Any]:
        return self._call("GET", "/status", timeout_s=timeout_s)

    def set_upstream(self, host: str | None, port: int | None, label: str = "") -> dict[str, Any]:
        """Route new requests to ``host:port`` (``None``: answer 503); returns the new status."""
        return self._call("PUT", "/upstream", {"host": host, "port": port, "label": label})

    def drain(self, host: str, port: int, timeout_s: float) -> dict[str, Any]:
        """Wait until the proxy has no request in flight to ``host:port``."""
        return self._call(
            "POST",
            "/drain",
            {"host": host, "port": port, "timeout_s": timeout_s},
            timeout_s=timeout_s + self.timeout_s,
        )

    def _call(
        self, method: str, path: str, payload: dict | None = None, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        connection = http.client.HTTPConnection(
            self.host, self.control_port, timeout=timeout_s or self.timeout_s
        )
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except OSError as exc:
            raise ProxyControlError(
                f"proxy control port {self.host}:{self.control_port} did not answer {method} {path}: {exc}"
            ) from exc
        finally:
            connection.close()
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            data = {"error": raw[:200].decode(errors="replace")}
        if response.status != 200:
            raise ProxyControlError(
                f"proxy refused {method} {path}: HTTP {response.status} {data.get('error', '')}"
            )
        return data
