"""The services of the local stack, in start order.

Every service binds to ``settings.bind_host`` (127.0.0.1) and keeps its state under
``ADCLICK_HOME``. Config files are rendered on every ``up`` from settings, so a changed port or
heap takes effect on the next start. Each engine's configuration lives in its own module
(``kafka_service``, ``s3_service``, ``trino_service``, ``spark_service`` (the cluster profile's),
``airflow_service``, ``app_services``);
this one lists them.
"""

from __future__ import annotations

from adclick.settings import Settings
from infra.airflow_service import airflow_services
from infra.app_services import ingest_api_service, query_api_service, stream_service
from infra.kafka_service import kafka_services
from infra.s3_service import s3_service
from infra.service import Service
from infra.spark_service import spark_services
from infra.trino_service import trino_service

__all__ = ["SECOND_STACK_PORTS", "Service", "all_services"]


SECOND_STACK_PORTS = {
    "kafka_port": 19092,  # brokers 19092, 19094, 19096; controllers one above each
    "kafka_controller_port": 19093,
    "spark_standalone_port": 17077,
    "spark_standalone_ui_port": 18082,  # workers' UIs 18083, 18084
    "s3_port": 19000,
    "trino_port": 18081,
}
"""Ports of a second stack beside the default one (the cluster test tier, the cluster benchmark),
so a running stack on the default ports is never in the way."""


def all_services(s: Settings) -> list[Service]:
    infra = [*kafka_services(s), s3_service(s), trino_service(s), *spark_services(s), *airflow_services(s)]
    return [*infra, ingest_api_service(s), query_api_service(s), stream_service(s)] if s.stack_apps else infra
