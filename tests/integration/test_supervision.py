"""`down` leaves nothing behind: a real supervisord stopping a program that forks children."""

from __future__ import annotations

import sys
import time

import psutil
import pytest

from adclick.settings import Settings
from infra import supervisor
from infra.services import Service

pytestmark = pytest.mark.integration

FORKER = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(3)]
print("children", [k.pid for k in kids], flush=True)
time.sleep(600)
"""


def test_shutdown_stops_every_forked_child(tmp_path) -> None:
    settings = Settings(home=tmp_path / "var")
    script = tmp_path / "forker.py"
    script.write_text(FORKER)
    svc = Service(name="forker", command=[sys.executable, str(script)], port=0, health=lambda: True)
    supervisor.start(settings, [svc])
    try:
        deadline = time.monotonic() + 30
        tree: list[psutil.Process] = []
        while time.monotonic() < deadline and len(tree) < 4:
            info = supervisor.process_info(settings).get("forker", {})
            if info.get("pid"):
                parent = psutil.Process(info["pid"])
                tree = [parent, *parent.children(recursive=True)]
            time.sleep(0.2)
        assert len(tree) == 4, "the program and its three children should be running"
    finally:
        pid = supervisor.shutdown(settings)
    assert pid is not None
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert alive == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
