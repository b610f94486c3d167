"""supervisord for the local stack: renders its config and talks to it over its unix socket."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from adclick.settings import Settings
from infra.errors import StackError
from infra.services import Service


def sup_dir(s: Settings) -> Path:
    return s.path("supervisor")


def log_dir(s: Settings) -> Path:
    return s.path("logs")


def log_file(s: Settings, name: str) -> Path:
    return log_dir(s) / f"{name}.log"


def conf_path(s: Settings) -> Path:
    return sup_dir(s) / "supervisord.conf"


def socket_path(s: Settings) -> Path:
    return sup_dir(s) / "supervisor.sock"


def pid_file(s: Settings) -> Path:
    return sup_dir(s) / "supervisord.pid"


def _esc(text: str) -> str:
    """supervisord interpolates %(name)s in values: a literal % must be doubled."""
    return text.replace("%", "%%")


def _program(s: Settings, svc: Service) -> str:
    if any("\n" in part for part in svc.command):
        raise ValueError(f"{svc.name}: a supervisord command cannot contain a newline")
    env = ",".join(f'{k}="{_esc(v).replace(chr(34), chr(92) + chr(34))}"' for k, v in svc.env.items())
    lines = [
        f"[program:{svc.name}]",
        f"command={_esc(shlex.join(svc.command))}",
        f"directory={svc.cwd or s.home}",
        "autostart=true",
        "autorestart=unexpected",
        "startsecs=3",
        "startretries=2",
        "stopsignal=TERM",
        f"stopwaitsecs={svc.stop_wait}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={log_file(s, svc.name)}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
    ]
    if env:
        lines.append(f"environment={env}")
    return "\n".join(lines)


def render_conf(s: Settings, services: list[Service]) -> str:
    d = sup_dir(s)
    head = f"""; Rendered by adclick on every `up`; edit settings, not this file.
[unix_http_server]
file={socket_path(s)}
chmod=0700

[supervisord]
logfile={d / "supervisord.log"}
logfile_maxbytes=10MB
pidfile={pid_file(s)}
childlogdir={log_dir(s)}
directory={s.home}
minfds=10240
identifier=adclick

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{socket_path(s)}
"""
    return head + "\n" + "\n\n".join(_program(s, svc) for svc in services) + "\n"


def proxy(s: Settings) -> xmlrpc.client.ServerProxy:
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{socket_path(s)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisord_pid(s: Settings) -> int | None:
    """PID of our supervisord when it is alive, else None."""
    try:
        pid = int(pid_file(s).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def is_running(s: Settings) -> bool:
    if supervisord_pid(s) is None or not socket_path(s).exists():
        return False
    try:
        return proxy(s).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def start(s: Settings, services: list[Service]) -> None:
    """Write the config and start supervisord, or make a running one pick the config up."""
    sup_dir(s).mkdir(parents=True, exist_ok=True)
    log_dir(s).mkdir(parents=True, exist_ok=True)
    conf_path(s).write_text(render_conf(s, services))
    if is_running(s):
        p = proxy(s)
        p.supervisor.reloadConfig()
        for svc in services:
            info = _info(s, svc.name)
            if info is None:
                p.supervisor.addProcessGroup(svc.name)
            elif info["statename"] not in ("RUNNING", "STARTING"):
                p.supervisor.startProcess(svc.name, False)
        return
    supervisord = str(Path(sys.executable).parent / "supervisord")
    proc = subprocess.run([supervisord, "-c", str(conf_path(s))], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"supervisord failed to start:\n{proc.stdout}{proc.stderr}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if is_running(s):
            return
        time.sleep(0.2)
    raise StackError(f"supervisord did not come up; see {sup_dir(s) / 'supervisord.log'}")


def _info(s: Settings, name: str) -> dict | None:
    try:
        return proxy(s).supervisor.getProcessInfo(name)
    except xmlrpc.client.Fault:
        return None


def process_info(s: Settings) -> dict[str, dict]:
    """supervisord's view of every program, by name ({} when it is not running)."""
    if not is_running(s):
        return {}
    return {p["name"]: p for p in proxy(s).supervisor.getAllProcessInfo()}


def stop_process(s: Settings, name: str) -> None:
    proxy(s).supervisor.stopProcess(name, True)


def start_process(s: Settings, name: str) -> None:
    proxy(s).supervisor.startProcess(name, True)


def shutdown(s: Settings, timeout: float = 120) -> int | None:
    """Stop every program (process groups included) and supervisord itself; returns its PID."""
    pid = supervisord_pid(s)
    if pid is None:
        return None
    try:
        proxy(s).supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return pid
        time.sleep(0.2)
    raise StackError(f"supervisord (PID {pid}) did not stop within {timeout:.0f}s")
