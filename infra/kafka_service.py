"""The Kafka service of the local stack (KRaft broker + controller): config, storage, health."""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path

from adclick.priority import KAFKA_CGROUP, in_cgroup
from adclick.settings import Settings
from infra import artifacts
from infra.errors import StackError
from infra.java import java17_home
from infra.service import Service, tcp_open


def kafka_dir(s: Settings) -> Path:
    return s.path("kafka")


def _kafka_properties(s: Settings) -> str:
    d = kafka_dir(s)
    return f"""# Rendered by adclick; edit settings, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{s.bind_host}:{s.kafka_controller_port}
listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port},CONTROLLER://{s.bind_host}:{s.kafka_controller_port}
advertised.listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={d / "data"}
num.partitions={s.topic_partitions}
num.network.threads=2
num.io.threads=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours={s.kafka_retention_hours}
log.segment.bytes=268435456
message.max.bytes=8388608
"""


_KAFKA_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


def _prepare_kafka(s: Settings) -> None:
    d = kafka_dir(s)
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "server.properties").write_text(_kafka_properties(s))
    (d / "log4j2.yaml").write_text(_KAFKA_LOG4J)
    if (d / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    java = java17_home(s) / "bin" / "java"
    proc = subprocess.run(
        [
            str(java),
            "-cp",
            artifacts.kafka_classpath(s),
            f"-Dlog4j2.configurationFile={d / 'log4j2.yaml'}",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "--config",
            str(d / "server.properties"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage in {d / 'data'} failed:\n{proc.stdout}{proc.stderr}")


def kafka_healthy(s: Settings) -> bool:
    if not tcp_open(s.bind_host, s.kafka_port):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def kafka_service(s: Settings) -> Service:
    d = kafka_dir(s)
    java = java17_home(s) / "bin" / "java"
    broker = [
        str(java),
        f"-Xms{s.kafka_heap}",
        f"-Xmx{s.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={d / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={d / 'logs'}",
        "-cp",
        artifacts.kafka_classpath(s),
        "kafka.Kafka",
        str(d / "server.properties"),
    ]
    return Service(
        name="kafka",
        # Every click's 202 waits for this broker's ack: it runs in its own, heavier CPU cgroup.
        command=in_cgroup(KAFKA_CGROUP, s.kafka_cpu_weight, broker),
        port=s.kafka_port,
        url=f"kafka://{s.kafka_bootstrap_servers}",
        health=lambda: kafka_healthy(s),
        prepare=lambda: _prepare_kafka(s),
        start_timeout=90,
    )
