"""``python -m dev.hubspot_sandbox``: serve the sandbox until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from dev import hubspot_sandbox
from dev.hubspot_sandbox.server import SandboxServer
from dev.hubspot_sandbox.settings import DEFAULT_TOKEN


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev.hubspot_sandbox",
        description="A local HubSpot Communication Preferences API on 127.0.0.1.",
        # The routes and the out-of-band controls, documented once in the package docstring.
        epilog=hubspot_sandbox.__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the accepted bearer token")
    parser.add_argument("--no-scope-token", default="no-scope-token", help="a token without scopes")
    parser.add_argument("--no-batch-write", action="store_true", help="withhold the batch scope")
    parser.add_argument("--rate-limit-per-10s", type=int, help="requests per rolling window")
    parser.add_argument("--rate-window-ms", type=int, default=10_000)
    parser.add_argument("--daily-limit", type=int)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share answered 5xx")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped connections")
    parser.add_argument("--partial-status", type=int, choices=(200, 207), default=207)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--url-file", type=Path, help="also write the base URL to this file")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        server = SandboxServer(
            token=args.token,
            port=args.port,
            no_scope_token=args.no_scope_token,
            batch_write_enabled=not args.no_batch_write,
            rate_limit_per_10s=args.rate_limit_per_10s,
            rate_window_ms=args.rate_window_ms,
            daily_limit=args.daily_limit,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            partial_status=args.partial_status,
            seed=args.seed,
        )
    except ValueError as exc:  # a setting out of range
        parser.error(str(exc))
    server.start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(server.url, flush=True)
    if args.url_file:
        # Written whole then renamed, so a reader polling the file never sees half a URL.
        partial = args.url_file.with_name(args.url_file.name + f".{os.getpid()}.tmp")
        partial.write_text(server.url + "\n")
        partial.replace(args.url_file)
    stopping.wait()
    server.stop()


if __name__ == "__main__":
    main()
