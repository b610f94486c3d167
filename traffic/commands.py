"""The ``adclick generate`` and ``adclick replay`` subcommands (argparse wiring and handlers).

This is the edge: the wall clock is read here (``now``) and nowhere in the generator or the
replay. Heavy imports (kafka-python, httpx) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from adclick.times import parse_time

_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d``, ``1h30m`` or plain seconds (``3600``)."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.match(value)
        if not value or match is None:
            raise argparse.ArgumentTypeError(
                f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 2d, 1h30m)"
            ) from None
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        seconds = (
            parts.get("d", 0) * 86_400
            + parts.get("h", 0) * 3_600
            + parts.get("m", 0) * 60
            + parts.get("s", 0)
        )
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


def _config_default(name: str) -> Any:
    from traffic.generator import GeneratorConfig

    return {f.name: f.default for f in fields(GeneratorConfig)}[name]


def _add_sink_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    sink = parser.add_mutually_exclusive_group(required=required)
    sink.add_argument(
        "--out", type=Path, metavar="DIR", help="write events.ndjson (and truth/dimensions) into DIR"
    )
    sink.add_argument(
        "--to",
        choices=("kafka", "api"),
        help="kafka: validate, hash and produce straight to the events topic; api: POST to the ingestion API",
    )
    parser.add_argument(
        "--url",
        help="ingestion API base URL for --to api (default http://{bind_host}:{ingest_port} from settings)",
    )
    parser.add_argument(
        "--api-key",
        help="X-Api-Key for --to api (default: the ADCLICK_API_KEY environment variable)",
    )
    parser.add_argument("--batch-size", type=int, default=1_000, help="events per API batch (max 1000)")
    parser.add_argument("--gzip", action="store_true", help="gzip API request bodies")


def add_generate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``generate``: deterministic synthetic traffic for a seed and a start time."""
    from traffic.generator import DEFAULT_CLICKS

    p = subparsers.add_parser(
        "generate",
        help="send synthetic ad traffic (deterministic for --seed and --start)",
        description="Synthetic impressions, clicks and conversions with retries, late events, bot bursts and "
        "A/B variants, plus the exact ground truth (truth.json).",
    )
    p.add_argument("--seed", type=int, default=_config_default("seed"))
    volume = p.add_mutually_exclusive_group()
    volume.add_argument("--clicks", type=int, help=f"target distinct clicks (default {DEFAULT_CLICKS:,})")
    volume.add_argument(
        "--impressions-per-second", type=float, help="mean impression rate instead of --clicks"
    )
    p.add_argument(
        "--start",
        help="first event time: 'now' or RFC 3339 (no zone = UTC); "
        "default: now minus --duration, so the run ends now",
    )
    p.add_argument("--duration", type=parse_duration, default="1h", help="event-time span (default 1h)")
    p.add_argument("--ads", type=int, default=_config_default("num_ads"))
    p.add_argument("--campaigns", type=int, default=_config_default("num_campaigns"))
    p.add_argument("--advertisers", type=int, default=_config_default("num_advertisers"))
    p.add_argument("--users", type=int, default=_config_default("num_users"))
    p.add_argument("--experiments", type=int, default=_config_default("num_experiments"))
    p.add_argument("--duplicate-rate", type=float, default=_config_default("duplicate_rate"))
    p.add_argument("--late-fraction", type=float, default=_config_default("late_fraction"))
    p.add_argument("--max-lateness", type=parse_duration, default="2h")
    p.add_argument("--bot-bursts", type=int, default=_config_default("bot_bursts"))
    p.add_argument("--no-diurnal", action="store_true", help="flat traffic rate (no daily curve)")
    p.add_argument("--truth", type=Path, metavar="FILE", help="also write the ground truth JSON here")
    _add_sink_arguments(p, required=True)
    p.set_defaults(func=_generate)
    return p


def add_replay_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``replay``: the TalkingData CSV mapped onto the event contract, shifted to end at ``--end``."""
    p = subparsers.add_parser(
        "replay",
        help="replay the real TalkingData clicks (CSV) into the pipeline",
        description="Maps app/channel to ad/campaign, keeps device/os/channel as attributes and shifts "
        "times so the file's latest click lands at --end. Default sink: --to kafka.",
    )
    p.add_argument("file", type=Path, help="TalkingData CSV (ip,app,device,os,channel,click_time,...)")
    p.add_argument("--end", help="where the latest click lands: 'now' (default) or RFC 3339")
    p.add_argument("--country", help="ISO country code to set on every event (the dataset has none)")
    _add_sink_arguments(p, required=False)
    p.set_defaults(func=_replay)
    return p


def _api_url(args: argparse.Namespace, settings: Any) -> str:
    return args.url or f"http://{settings.bind_host}:{settings.ingest_port}"


def _api_key(args: argparse.Namespace) -> str | None:
    import os

    return args.api_key or os.environ.get("ADCLICK_API_KEY") or None


def _report_sink(result: Any, label: str) -> int:
    """Print a sink's counts; 1 when something was invalid, rejected or failed."""
    from traffic.sinks import ApiResult, KafkaResult

    if isinstance(result, KafkaResult):
        print(f"{label}: produced {result.produced:,} (invalid {result.invalid:,}, failed {result.failed:,})")
        bad = result.invalid + result.failed
    elif isinstance(result, ApiResult):
        print(
            f"{label}: sent {result.sent:,} in {result.batches:,} batches: accepted {result.accepted:,}, "
            f"duplicates {result.duplicates:,}, rejected {result.rejected:,} ({result.retries:,} retries)"
        )
        bad = result.rejected
    else:
        print(f"{label}: wrote {result:,} events")
        return 0
    for error in result.errors[:10]:
        print(f"  {error}", file=sys.stderr)
    return 1 if bad else 0


def _check_batch_size(args: argparse.Namespace) -> str | None:
    from traffic.sinks import MAX_BATCH

    if not 1 <= args.batch_size <= MAX_BATCH:
        return f"--batch-size must be between 1 and {MAX_BATCH}"
    return None


def _generate(args: argparse.Namespace) -> int:
    from adclick.contract import now_utc
    from adclick.privacy import MissingHashKeyError, hash_key
    from adclick.progress import Progress
    from adclick.settings import get_settings
    from traffic.generator import GeneratorConfig, expected_sends, generate, generate_timed
    from traffic.sinks import SinkError, post_to_api, send_to_kafka, write_ndjson
    from traffic.truth import Truth

    settings = get_settings()
    now = now_utc()
    try:
        start = parse_time(args.start, now) if args.start else now - args.duration
        config = GeneratorConfig(
            start=start,
            seed=args.seed,
            duration=args.duration,
            clicks=args.clicks,
            impressions_per_second=args.impressions_per_second,
            num_ads=args.ads,
            num_campaigns=args.campaigns,
            num_advertisers=args.advertisers,
            num_users=args.users,
            num_experiments=args.experiments,
            duplicate_rate=args.duplicate_rate,
            late_fraction=args.late_fraction,
            max_lateness=args.max_lateness,
            bot_bursts=args.bot_bursts,
            diurnal=not args.no_diurnal,
        )
        problem = _check_batch_size(args)
        if problem:
            raise ValueError(problem)
        key = hash_key(settings)
    except (ValueError, argparse.ArgumentTypeError, MissingHashKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    truth = Truth()
    print(
        f"generate: seed {config.seed}, events {config.start.isoformat()} .. {config.end.isoformat()}",
        file=sys.stderr,
    )
    if args.to == "api" and config.end > now + timedelta(minutes=settings.future_skew_minutes):
        print(
            "warning: events after now + clock skew will be rejected by the API (ts in the future)",
            file=sys.stderr,
        )
    try:
        with Progress("generate", expected=expected_sends(config, key=key)) as progress:
            if args.out is not None:
                result: Any = write_ndjson(
                    generate(config, truth, key=key), args.out, truth=truth, progress=progress
                )
                label = f"ndjson {args.out}"
            elif args.to == "kafka":
                result = send_to_kafka(
                    generate_timed(config, truth, key=key), settings=settings, key=key, progress=progress
                )
                label = f"kafka {settings.topic_events}"
            else:
                result = post_to_api(
                    generate(config, truth, key=key),
                    url=_api_url(args, settings),
                    api_key=_api_key(args),
                    batch_size=args.batch_size,
                    compress=args.gzip,
                    progress=progress,
                )
                label = "api"
    except SinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.truth is not None:
        truth.write(args.truth)
    print(
        f"generated {truth.events_sent:,} sends: {truth.distinct['impression']:,} impressions, "
        f"{truth.distinct['click']:,} clicks ({truth.bot_clicks:,} from bots), "
        f"{truth.distinct['conversion']:,} conversions; {truth.duplicate_sends:,} duplicate sends, "
        f"{truth.late_events:,} late"
    )
    return _report_sink(result, label)


def _sized(events: Iterator[dict[str, Any]], stats: Any, progress: Any) -> Iterator[dict[str, Any]]:
    """The replayed events, giving ``progress`` its total once the replay's first read counted it."""
    for event in events:
        if progress.expected is None:
            progress.set_expected(stats.expected_events)
        yield event


def _replay(args: argparse.Namespace) -> int:
    from adclick.contract import now_utc
    from adclick.privacy import MissingHashKeyError
    from adclick.progress import Progress
    from adclick.settings import get_settings
    from traffic.replay import ReplayError, ReplayStats, replay_events
    from traffic.sinks import SinkError, post_to_api, send_to_kafka, with_clock, write_ndjson

    settings = get_settings()
    now = now_utc()
    try:
        end = parse_time(args.end, now) if args.end else now
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = _check_batch_size(args) or (None if args.file.is_file() else f"{args.file}: no such file")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    stats = ReplayStats()
    progress = Progress("replay")
    events = _sized(replay_events(args.file, end=end, stats=stats, country=args.country), stats, progress)
    try:
        with progress:
            if args.out is not None:
                result: Any = write_ndjson(events, args.out, progress=progress)
                label = f"ndjson {args.out}"
            elif args.to == "api":
                result = post_to_api(
                    events,
                    url=_api_url(args, settings),
                    api_key=_api_key(args),
                    batch_size=args.batch_size,
                    compress=args.gzip,
                    progress=progress,
                )
                label = "api"
            else:
                result = send_to_kafka(with_clock(events, end), settings=settings, progress=progress)
                label = f"kafka {settings.topic_events}"
    except (ReplayError, SinkError, MissingHashKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"replayed {stats.rows:,} rows: {stats.clicks:,} clicks, {stats.conversions:,} conversions "
        f"(original {stats.first_time} .. {stats.last_time}, shifted by {stats.shift})"
    )
    return _report_sink(result, label)
