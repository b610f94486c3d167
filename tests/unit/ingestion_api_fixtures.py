"""The ingestion API tests' fixtures (a pytest plugin: ``pytest_plugins``): sink, clock, apps.

``api_factory`` builds an app per call (its own home directory under ``tmp_path``, so its own
spool) on the shared fake sink and clock, and closes them all after the test. Test modules
register this module (``pytest_plugins``) rather than import the fixtures: an imported fixture
would be shadowed by the test's parameter of the same name. tests/unit is on sys.path as the
directory of the test modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ingestion_api_support import PEER, Api, Clock, FakeSink, make_settings

from ingestion.app import create_app


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api_factory(tmp_path: Path, sink: FakeSink, clock: Clock) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(*, peer: str = PEER, home: Path | None = None, **overrides: Any) -> Api:
        settings = make_settings(home or tmp_path / f"home{len(made)}", **overrides)
        client = Api(create_app(settings, producer=sink, clock=clock), peer=peer)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()
