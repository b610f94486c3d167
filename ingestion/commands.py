"""The ``adclick ingest-api`` and ``adclick mint-click-url`` subcommands (argparse wiring).

Heavy imports (FastAPI, uvicorn, kafka-python) happen inside the handlers. The wall clock is
read here (``--issued-at`` default) and nowhere in :mod:`ingestion.redirect`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from adclick.times import parse_time


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value


def _issued_at(text: str) -> float:
    """``now``, epoch seconds, or an RFC 3339 time (no zone means UTC), as epoch seconds."""
    try:
        return float(text.strip())
    except ValueError:
        pass
    if text.strip().lower() == "now":
        return time.time()
    return parse_time(text, datetime.now(tz=UTC)).timestamp()


def _ingest_api(args: argparse.Namespace) -> int:
    from adclick.privacy import MissingHashKeyError
    from adclick.settings import get_settings
    from ingestion.server import run

    settings = get_settings()
    port = args.port if args.port is not None else settings.ingest_port
    print(
        f"ingestion API on http://{settings.bind_host}:{port} (docs at /docs), "
        f"{args.workers or settings.ingest_worker_count} worker(s), producer {settings.ingest_producer}",
        file=sys.stderr,
        flush=True,
    )
    from adclick.priority import join_api_cgroup

    join_api_cgroup(settings)  # latency-critical: its own CPU cgroup, weighted above the rest
    try:
        workers = args.workers or settings.ingest_worker_count
        if args.workers and args.workers != settings.ingest_worker_count:
            # every worker builds its settings from the environment: tell them how many share the limits
            os.environ["ADCLICK_INGEST_WORKERS"] = str(args.workers)
            settings = settings.model_copy(update={"ingest_workers": args.workers})
        run(settings, port=args.port, workers=workers)
    except MissingHashKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _mint_click_url(args: argparse.Namespace) -> int:
    from adclick.settings import get_settings
    from ingestion.redirect import MissingRedirectKeyError, TokenError, mint_click_url

    settings = get_settings()
    base_url = args.base_url or f"http://{settings.bind_host}:{settings.ingest_port}"
    issued_at = args.issued_at if args.issued_at is not None else time.time()
    try:
        url = mint_click_url(
            settings,
            base_url,
            args.ad_id,
            args.campaign_id,
            args.placement_id,
            args.destination,
            issued_at,
        )
    except (TokenError, MissingRedirectKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(url)
    return 0


def add_ingest_parser(subparsers: Any) -> None:
    """Add ``ingest-api`` and ``mint-click-url`` to the ``adclick`` subcommands."""
    p = subparsers.add_parser(
        "ingest-api",
        help="run the click ingestion HTTP API (uvicorn, uvloop, httptools)",
        description="Serve POST /v1/events, POST /v1/events/batch, GET /v1/health and the signed click "
        "redirect GET /v1/c/{token} on settings.bind_host (OpenAPI docs at /docs).",
    )
    p.add_argument("--port", type=_port, help="listen port (default: settings.ingest_port, 8000)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        help="worker processes (default: settings.ingest_workers, ADCLICK_INGEST_WORKERS; 0 there means half "
        "the CPU cores); each owns a spool slot and 1/N of the rate limits",
    )
    p.set_defaults(func=_ingest_api)

    m = subparsers.add_parser(
        "mint-click-url",
        help="print a signed click-redirect URL for an ad placement",
        description="The URL records a click and redirects to --destination while the token is valid "
        "(settings.redirect_ttl_seconds). Signed with ADCLICK_REDIRECT_KEY (a development key in "
        "local/test).",
    )
    m.add_argument("--ad-id", required=True)
    m.add_argument("--destination", required=True, help="http(s) URL the click lands on")
    m.add_argument("--campaign-id")
    m.add_argument("--placement-id")
    m.add_argument(
        "--base-url", help="ingestion API base URL (default http://{bind_host}:{ingest_port} from settings)"
    )
    m.add_argument(
        "--issued-at", type=_issued_at, help="token issue time: now (default), epoch seconds or RFC 3339"
    )
    m.set_defaults(func=_mint_click_url)
