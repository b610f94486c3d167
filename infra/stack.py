"""``adclick up | down | status``: the local stack under supervisord.

``up`` installs what is missing, checks ports, renders configs, starts supervisord, waits for
every health check, then creates the Kafka topics and the S3 bucket (both idempotent).
``down`` stops exactly what ``up`` started (supervisord and its process groups) and nothing else.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection

import psutil

from adclick.settings import Settings
from infra import artifacts, supervisor
from infra.errors import StackError
from infra.kafka_service import is_broker
from infra.services import Service, all_services

Log = Callable[[str], None]


def _listener_pid(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid or -1
    return None


def _ours(s: Settings) -> set[int]:
    """PIDs of supervisord's children and their descendants."""
    pid = supervisor.supervisord_pid(s)
    if pid is None:
        return set()
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def check_ports(s: Settings, services: list[Service]) -> None:
    ours = _ours(s)
    for svc in services:
        if not svc.port:
            continue
        pid = _listener_pid(svc.port)
        if pid is not None and pid not in ours:
            who = f"PID {pid} ({_cmd(pid)})" if pid > 0 else "another user's process"
            raise StackError(
                f"port {svc.port} for {svc.name} is already in use by {who}; stop it or set another port "
                f"(e.g. ADCLICK_{svc.name.split('-')[0].upper()}_PORT)"
            )


def _cmd(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())[:100]
    except psutil.Error:
        return "?"


def wait_healthy(s: Settings, services: list[Service], log: Log) -> None:
    pending = {svc.name: svc for svc in services}
    started = time.monotonic()
    last_report = 0.0
    while pending:
        info = supervisor.process_info(s)
        for name, svc in list(pending.items()):
            state = info.get(name, {}).get("statename")
            if state == "FATAL":  # EXITED / BACKOFF are transient: supervisord restarts the program
                raise StackError(
                    f"{name} failed to start ({state}); last lines of {supervisor.log_file(s, name)}:\n"
                    + _tail(supervisor.log_file(s, name))
                )
            if state == "RUNNING" and svc.health():
                log(f"  {name:<22} healthy after {time.monotonic() - started:5.1f}s")
                del pending[name]
            elif time.monotonic() - started > svc.start_timeout:
                raise StackError(
                    f"{name} not healthy after {svc.start_timeout}s; last lines of "
                    f"{supervisor.log_file(s, name)}:\n" + _tail(supervisor.log_file(s, name))
                )
        if pending and time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            log(f"  waiting for {', '.join(pending)} ({time.monotonic() - started:.0f}s)")
        time.sleep(0.5)


def _tail(path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_topics(s: Settings) -> list[str]:
    """Create the event and DLQ topics if they do not exist; returns the ones created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers, request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        configs = {
            "retention.ms": str(s.kafka_retention_hours * 3600 * 1000),
            "min.insync.replicas": str(s.kafka_min_insync_replicas),
        }
        wanted = [
            NewTopic(
                t,
                num_partitions=s.topic_partitions,
                replication_factor=s.kafka_replication_factor,
                topic_configs=configs,
            )
            for t in (s.topic_events, s.topic_dlq)
            if t not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # created by a concurrent `up`
                admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        admin.close()


def s3_client(s: Settings):
    from adclick.s3 import client

    return client(s)


def ensure_bucket(s: Settings, bucket: str | None = None) -> bool:
    """Create ``bucket`` (default: the cold tier's) on the S3 store unless it exists; True if created."""
    bucket = bucket or s.s3_bucket
    client = s3_client(s)
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket in names:
        return False
    client.create_bucket(Bucket=bucket)
    return True


def up(s: Settings, log: Log = print, *, only: Collection[str] | None = None) -> None:
    """Start the stack (``only``: just the services of these names, e.g. a test tier's)."""
    t0 = time.monotonic()
    s.home.mkdir(parents=True, exist_ok=True)
    artifacts.install_all(s, log=log)
    services = [svc for svc in all_services(s) if only is None or svc.name in only]
    check_ports(s, services)
    already = supervisor.process_info(s)
    for svc in services:
        if svc.prepare and already.get(svc.name, {}).get("statename") != "RUNNING":
            log(f"preparing {svc.name} ...")
            svc.prepare()
    log(f"starting {len(services)} services under supervisord (state in {s.home}) ...")
    supervisor.start(s, services)
    # Kafka first, then its topics, so the stream application never starts on a missing topic.
    kafka = [svc for svc in services if is_broker(svc.name)]
    if kafka:
        wait_healthy(s, kafka, log)
        created = ensure_topics(s)
        log(f"kafka topics: {', '.join(created) + ' created' if created else 'present'}")
    wait_healthy(s, [svc for svc in services if not is_broker(svc.name)], log)
    if any(svc.name == "s3" for svc in services):
        for bucket in dict.fromkeys(b for b in (s.s3_bucket, s.lake_bucket) if b):  # an s3a:// lake's too
            log(f"s3 bucket {bucket}: {'created' if ensure_bucket(s, bucket) else 'present'}")
    log(f"stack up in {time.monotonic() - t0:.1f}s")
    print_urls(s, services, log)


def print_urls(s: Settings, services: list[Service], log: Log = print) -> None:
    for svc in services:
        if svc.url:
            log(f"  {svc.name:<22} {svc.url}" + (f"   ({svc.note})" if svc.note else ""))


def down(s: Settings, log: Log = print) -> None:
    ours = _ours(s)
    pid = supervisor.shutdown(s)
    if pid is None:
        log("stack is not running")
        return
    deadline = time.monotonic() + 30
    left = [p for p in ours if psutil.pid_exists(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = [
            p for p in left if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
    if left:
        raise StackError(f"processes still running after shutdown: {left}")
    log(f"stack stopped (supervisord PID {pid} and {len(ours)} child processes)")


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def status(s: Settings, log: Log = print) -> bool:
    """Print each service's PID, port, health and log; True when all are healthy."""
    services = all_services(s)
    info = supervisor.process_info(s)
    if not info:
        log(f"stack is not running (state in {s.home}); start it with `adclick up`")
        return False
    all_ok = True
    log(f"{'service':<22} {'state':<9} {'pid':>7} {'port':>6}  {'health':<8} {'rss':>8}  log")
    for svc in services:
        p = info.get(svc.name, {})
        state = p.get("statename", "ABSENT")
        healthy = state == "RUNNING" and svc.health()
        all_ok &= healthy
        rss = f"{tree_rss(p['pid']) / 1024**2:.0f} MiB" if p.get("pid") else "-"
        log(
            f"{svc.name:<22} {state:<9} {p.get('pid') or '-':>7} {svc.port or '-':>6}  "
            f"{'healthy' if healthy else 'DOWN':<8} {rss:>8}  {supervisor.log_file(s, svc.name)}"
        )
    others = sorted(set(info) - {svc.name for svc in services})
    if others:  # started under another profile (ADCLICK_STACK_PROFILE differs from `up`'s)
        log(f"also running, not in the {s.stack_profile} profile: {', '.join(others)}")
    if "stream" in info:
        log(_stream_line(s))
    log(_quality_line(s))
    log("")
    print_urls(s, services, log)
    return all_ok


def _quality_line(s: Settings) -> str:
    """Where the data-quality reports are (Great Expectations Data Docs, built by the batch layer)."""
    index = s.path("dq", "data_docs", "index.html")
    if not index.is_file():
        return "data quality: no report yet (the batch layer's first day builds it)"
    return f"data quality: {index.as_uri()} (reports per day in {s.path('dq', 'reports')})"


def _stream_line(s: Settings) -> str:
    """One line per stream query: Kafka lag, last batch, and events dropped behind the watermark."""
    from adclick import stream_status as heartbeat

    beat = heartbeat.read(s)
    if not beat:
        return "stream: no heartbeat yet"
    parts = []
    for name, q in beat.get("queries", {}).items():
        try:
            behind = heartbeat.lag(s, name)
            lag_text = f"lag {behind:,}" if isinstance(behind, int) else "lag unknown"
        except Exception as exc:  # Kafka down: say so, status must not fail
            lag_text = f"lag unknown ({type(exc).__name__})"
        rate = q.get("rows_per_s") or 0
        late = q.get("late_rows_dropped") or 0
        parts.append(
            f"stream {name}: {lag_text} records behind Kafka, batch {q.get('batch_id')} "
            f"({q.get('input_rows')} rows, {rate:.0f} rows/s)"
            + (f", {late:,} late rows dropped" if late else "")
        )
    return "\n".join(parts) or "stream: no query reported yet"
