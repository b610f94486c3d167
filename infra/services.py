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

__all__ = ["Service", "all_services"]


def all_services(s: Settings) -> list[Service]:
    infra = [*kafka_services(s), s3_service(s), trino_service(s), *spark_services(s), *airflow_services(s)]
    return [*infra, ingest_api_service(s), query_api_service(s), stream_service(s)] if s.stack_apps else infra
