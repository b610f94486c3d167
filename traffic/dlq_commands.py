"""The ``adclick dlq export`` and ``adclick dlq replay`` subcommands (argparse wiring and handlers).

Kept light: the implementation (:mod:`traffic.dlq`: Kafka, the contract, HTTP) is imported by the
handlers, so building the ``adclick`` parser does not load it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def _export(args: argparse.Namespace) -> int:
    from adclick.settings import get_settings
    from traffic.dlq import export_lines, read_topic

    settings = get_settings()
    records = read_topic(settings, settings.topic_dlq)
    if args.out is None:
        result = export_lines(records, sys.stdout.buffer)
        sys.stdout.flush()
    else:
        partial = args.out.with_name(args.out.name + ".partial")
        try:
            with partial.open("wb") as out:
                result = export_lines(records, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(args.out)  # a complete file or none
    print(
        f"dlq export: {result.written:,} rejected records from {settings.topic_dlq}"
        f" ({result.copies:,} re-sent copies and {result.foreign:,} foreign records skipped)"
        + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from adclick.settings import get_settings
    from traffic.dlq import read_file, replay
    from traffic.sinks import MAX_BATCH, SinkError

    settings = get_settings()
    if not 1 <= args.batch_size <= MAX_BATCH:
        print(f"error: --batch-size must be between 1 and {MAX_BATCH}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 2
    lines = read_file(args.file)
    try:
        result = replay(
            lines,
            url=args.url or f"http://{settings.bind_host}:{settings.ingest_port}",
            api_key=args.api_key or os.environ.get("ADCLICK_API_KEY") or None,
            batch_size=args.batch_size,
        )
    except SinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    api = result.api
    print(
        f"dlq replay: {len(lines):,} lines, sent {api.sent:,}: accepted {api.accepted:,}, "
        f"duplicates {api.duplicates:,}, rejected {api.rejected:,}; "
        f"{len(result.unfixed):,} unfixed (no JSON object event, not sent)"
    )
    if result.pseudonyms_dropped:
        print(
            f"  note: {result.pseudonyms_dropped:,} events had a user_key/ip_key, which the API does not "
            "take (it hashes user_id/ip itself): they were sent without",
            file=sys.stderr,
        )
    for lineage, error in result.rejected[:10]:
        print(f"  rejected {lineage}: {error}", file=sys.stderr)
    for lineage in result.unfixed[:10]:
        print(f"  unfixed {lineage}", file=sys.stderr)
    return 1 if api.rejected or result.unfixed else 0


def add_dlq_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``dlq export`` and ``dlq replay`` to the ``adclick`` subcommands."""
    p = subparsers.add_parser(
        "dlq",
        help="the dead-letter topic: export what bronze landing rejected, replay fixed records",
        description="The stream's bronze landing sends every record it rejects to the DLQ topic "
        "(ADCLICK_TOPIC_DLQ) with its reason and lineage. Export them, fix the `event` of each line, "
        "replay the file through the ingestion API.",
    )
    sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    e = sub.add_parser("export", help="write the DLQ records as NDJSON (raw payload, reason, lineage)")
    e.add_argument("--out", type=Path, metavar="FILE", help="write here (default: standard output)")
    e.set_defaults(func=_export)
    r = sub.add_parser("replay", help="send the fixed events of an export file to the ingestion API")
    r.add_argument("file", type=Path, help="an `adclick dlq export` file, its `event` fields fixed")
    r.add_argument(
        "--url", help="ingestion API base URL (default http://{bind_host}:{ingest_port} from settings)"
    )
    r.add_argument("--api-key", help="X-Api-Key (default: the ADCLICK_API_KEY environment variable)")
    r.add_argument("--batch-size", type=int, default=1_000, help="events per API batch (max 1000)")
    r.set_defaults(func=_replay)
    return p
