"""The benchmark result record and the machine it was measured on."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def write_result(
    benchmark: str,
    *,
    metric: str,
    value: float,
    unit: str,
    peer: dict[str, Any] | None,
    params: dict[str, Any],
    summary: str,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``results/<benchmark>.json`` and print the one-line summary."""
    ratio = round(value / peer["value"], 3) if peer and peer.get("value") else None
    record = {
        "benchmark": benchmark,
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "peer": peer,
        "ratio": ratio,
        "params": params,
        "machine": machine(),
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        **extra,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{benchmark}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{benchmark}: {summary}" + (f" (ratio {ratio} vs {peer['name']})" if ratio is not None else ""))
    return record
