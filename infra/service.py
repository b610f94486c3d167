"""What a service of the local stack is (command, port, health check) and the two probes health
checks use."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Service:
    name: str
    command: list[str]
    port: int
    health: Callable[[], bool]
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    start_timeout: int = 120
    stop_wait: int = 30
    note: str = ""


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def http_ok(url: str, predicate: Callable[[httpx.Response], bool] = lambda r: r.status_code < 500) -> bool:
    try:
        return predicate(httpx.get(url, timeout=2))
    except httpx.HTTPError:
        return False
