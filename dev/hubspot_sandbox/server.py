"""HTTP plumbing: a threaded keep-alive server on 127.0.0.1, the ``/_sandbox/`` control routes,
and :class:`SandboxServer`, the handle tests and scripts hold."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from dev.hubspot_sandbox.api import ApiRequest, SandboxApi
from dev.hubspot_sandbox.settings import DEFAULT_TOKEN, SandboxSettings
from dev.hubspot_sandbox.state import StatusKey, WideKey

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_sandbox"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # bursts from many concurrent clients must not be refused
    allow_reuse_address = True

    def __init__(self, port: int, api: SandboxApi) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their threads finish when the server stops."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubSpotSandbox/1.0"
    server: _HttpServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: every API request is kept in ``requests()`` instead."""

    def _dispatch(self) -> None:
        arrived, arrived_wall = time.monotonic(), time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""  # always drained, for keep-alive
        path = self.path.partition("?")[0]
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path, body)
            return
        authorization = self.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        api = self.server.api
        answer = api.answer(
            ApiRequest(
                method=self.command,
                target=self.path,
                token=token.strip() if scheme.lower() == "bearer" else None,
                body=body,
                arrived=arrived,
                arrived_wall=arrived_wall,
            )
        )
        if answer.delay_s:
            time.sleep(answer.delay_s)
        # Logged before answering, so a client that got its answer also finds its record.
        api.log(
            answer.record, "dropped" if answer.status is None else answer.status, time.monotonic()
        )
        if answer.status is None:
            # Close without a byte of answer: the client sees the remote end disconnect.
            self.close_connection = True
            return
        self._send(answer.status, answer.body, answer.headers)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _control(self, path: str, body: bytes) -> None:
        """``/_sandbox/*``: no auth, never limited, delayed, faulted or recorded."""
        api = self.server.api
        route = (self.command, path.removeprefix(CONTROL_PREFIX))
        query = parse_qs(self.path.partition("?")[2])
        try:
            payload = json.loads(body) if body else None
            if route == ("GET", "/health"):
                self._send(200, {"status": "ok"})
            elif route == ("GET", "/config"):
                self._send(200, api.config())
            elif route == ("POST", "/config"):
                self._send(200, api.configure(**(payload or {})))
            elif route == ("POST", "/script"):
                answers = payload.get("answers") if isinstance(payload, dict) else payload
                api.script(list(answers or []))
                self._send(200, {"pending": api.config()["pending_script"]})
            elif route == ("POST", "/reset"):
                api.reset()
                self._send(200, {"status": "ok"})
            elif route == ("GET", "/statuses"):
                self._send(200, _status_list(api.statuses()))
            elif route == ("POST", "/statuses"):
                api.seed_statuses(_listed(payload, "statuses"))
                self._send(200, _status_list(api.statuses()))
            elif route == ("POST", "/statuses/drop"):
                api.drop_statuses(_listed(payload, "statuses"))
                self._send(200, _status_list(api.statuses()))
            elif route == ("POST", "/contacts/forget"):
                api.forget_contacts(_listed(payload, "emails"))
                self._send(200, _status_list(api.statuses()))
            elif route == ("GET", "/wide-statuses"):
                self._send(200, _wide_list(api.wide_statuses()))
            elif route == ("POST", "/wide-statuses"):
                api.set_wide_statuses(_listed(payload, "wideStatuses"))
                self._send(200, _wide_list(api.wide_statuses()))
            elif route == ("GET", "/requests"):
                since = int(query.get("since", ["0"])[0])
                records = api.requests(since)
                self._send(200, {"requests": records, "next": since + len(records)})
            else:
                self._send(404, {"error": f"no control route {self.command} {path}"})
        except (ValueError, TypeError, KeyError) as exc:
            self._send(400, {"error": str(exc)})


def _listed(payload: Any, key: str) -> list[Any]:
    """A control request's records: a JSON list, or an object holding it under ``key``."""
    records = payload.get(key) if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise ValueError(f"send a JSON list, or an object with a list under {key!r}")
    return records


def _status_list(statuses: dict[StatusKey, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"email": email, "subscriptionId": subscription_id, "channel": channel, **record}
        for (email, subscription_id, channel), record in sorted(statuses.items())
    ]


def _wide_list(wide: dict[WideKey, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"email": email, "channel": channel, **record}
        for (email, channel), record in sorted(wide.items())
    ]


class SandboxServer:
    """The sandbox on a loopback port, served from a background thread.

    ``settings`` are :class:`SandboxSettings` fields (e.g. ``rate_limit_per_10s=190``,
    ``latency_ms=100``, ``error_rate=0.2``, ``seed=7``); :meth:`configure` changes them live.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, port: int = 0, **settings: Any) -> None:
        self._api = SandboxApi(SandboxSettings().updated(token=token, **settings))
        self._port = port
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self._httpd = _HttpServer(self._port, self._api)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how quickly stop() returns
            name="hubspot-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._api.configure(**settings)

    def config(self) -> dict[str, Any]:
        return self._api.config()

    def script(self, answers: list[dict[str, Any]]) -> None:
        self._api.script(answers)

    def reset(self) -> None:
        self._api.reset()

    def statuses(self) -> dict[StatusKey, dict[str, Any]]:
        return self._api.statuses()

    # Changes behind the pipeline's back (see the package docstring). Each refuses bad records
    # with a ValueError naming them, before it changes anything.

    def seed_statuses(self, records: list[dict[str, Any]]) -> None:
        """Set statuses as if changed inside HubSpot: ``{email, subscriptionId, status,
        channel?, timestamp?, source?, legalBasis?, legalBasisExplanation?}`` each."""
        self._api.seed_statuses(records)

    def drop_statuses(self, records: list[dict[str, Any]]) -> None:
        """Lose stored statuses, ``{email, subscriptionId, channel?}`` each (a lost write)."""
        self._api.drop_statuses(records)

    def forget_contacts(self, emails: list[str]) -> None:
        """Forget contacts entirely (merged or deleted) until a write creates them again."""
        self._api.forget_contacts(emails)

    def set_wide_statuses(self, records: list[dict[str, Any]]) -> None:
        """Opt contacts out of all email, ``{email, status: "UNSUBSCRIBED", timestamp?}`` each,
        or end the opt-out (any other status); their subscription statuses stay as they are."""
        self._api.set_wide_statuses(records)

    def wide_statuses(self) -> dict[WideKey, dict[str, Any]]:
        return self._api.wide_statuses()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._api.requests(since)
