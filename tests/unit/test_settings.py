"""Settings: defaults, environment overrides, derived values and the path helper."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from adclick import settings as settings_module
from adclick.settings import PROJECT_ROOT, Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ADCLICK_* variable or .env file from the machine leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("ADCLICK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_local_defaults() -> None:
    s = Settings()
    assert s.env == "local"
    assert s.home == (PROJECT_ROOT / "var").resolve()
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.topic_events == "adclick.events"
    assert s.topic_dlq == "adclick.events.dlq"
    assert s.late_horizon_days == 7
    assert s.future_skew_minutes == 5
    assert s.ingest_port == 8000
    assert s.query_port == 8001
    assert s.hash_key is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ADCLICK_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("ADCLICK_SPARK_MASTER", "spark://master:7077")
    monkeypatch.setenv("ADCLICK_TRINO_PORT", "18081")
    monkeypatch.setenv("ADCLICK_ENV", "staging")
    monkeypatch.setenv("ADCLICK_HASH_KEY", "s3cret")
    s = Settings()
    assert s.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert s.spark_master == "spark://master:7077"
    assert s.trino_port == 18081
    assert s.trino_url == "http://127.0.0.1:18081"
    assert s.env == "staging"
    assert s.hash_key is not None
    assert s.hash_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADCLICK_TOPIC_EVENTS=from-dotenv\nADCLICK_INGEST_PORT=9100\n")
    monkeypatch.setenv("ADCLICK_INGEST_PORT", "9200")
    s = Settings()
    assert s.topic_events == "from-dotenv"
    assert s.ingest_port == 9200


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_ENV", "production")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("ADCLICK_ENV", "local")
    monkeypatch.setenv("ADCLICK_KAFKA_PORT", "not-a-port")
    with pytest.raises(ValidationError):
        Settings()


def test_lake_root_derived_from_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "data"
    monkeypatch.setenv("ADCLICK_HOME", str(home))
    s = Settings()
    assert s.home == home.resolve()
    assert s.lake_root == (home.resolve() / "lake").as_uri()
    assert s.lake_root.startswith("file:///")
    assert s.lake_is_local
    assert s.lake_local_path == home.resolve() / "lake"


def test_relative_home_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ADCLICK_HOME", "relative/state")
    s = Settings()
    assert s.home == tmp_path.resolve() / "relative" / "state"
    assert s.home.is_absolute()


def test_explicit_s3_lake_root_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_LAKE_ROOT", "s3a://bucket/lake")
    s = Settings()
    assert s.lake_root == "s3a://bucket/lake"
    assert not s.lake_is_local
    with pytest.raises(ValueError, match="not a local"):
        _ = s.lake_local_path


def test_s3_endpoint_derived_from_bind_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_BIND_HOST", "10.0.0.5")
    monkeypatch.setenv("ADCLICK_S3_PORT", "9900")
    s = Settings()
    assert s.s3_endpoint == "http://10.0.0.5:9900"
    assert s.airflow_url == "http://10.0.0.5:8080"


def test_path_helper_joins_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ADCLICK_HOME", str(tmp_path / "h"))
    s = Settings()
    assert s.path() == (tmp_path / "h").resolve()
    assert s.path("kafka") == (tmp_path / "h").resolve() / "kafka"
    assert s.path("checkpoints", "bronze") == (tmp_path / "h").resolve() / "checkpoints" / "bronze"


def test_get_settings_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("ADCLICK_TOPIC_EVENTS", "changed")
    assert get_settings() is first
    assert get_settings().topic_events == "adclick.events"
    settings_module.get_settings.cache_clear()
    assert get_settings().topic_events == "changed"


def test_cluster_profile_wiring() -> None:
    s = Settings(stack_profile="cluster", kafka_port=19092)
    assert s.spark_master == "spark://127.0.0.1:7077"
    assert s.kafka_brokers == 3
    assert s.kafka_bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas) == (3, 2)
    local = Settings()
    assert local.spark_master == "local[2]"
    assert (local.kafka_brokers, local.kafka_replication_factor, local.kafka_min_insync_replicas) == (1, 1, 1)
    # an explicit master or bootstrap list wins over the profile's
    assert Settings(stack_profile="cluster", spark_master="yarn").spark_master == "yarn"
    assert (
        Settings(stack_profile="cluster", kafka_bootstrap_servers="b1:9092").kafka_bootstrap_servers
        == "b1:9092"
    )


def test_min_insync_replicas_above_the_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds kafka_replication_factor"):
        Settings(kafka_brokers=3, kafka_replication_factor=2, kafka_min_insync_replicas=3)
