"""Spark's CPU cgroup: created with the weight on cgroup v2 and v1 layouts, processes moved in,
and nothing done (no error) where cgroups are absent or the weight is 0."""

from __future__ import annotations

import os
from pathlib import Path

from adclick.priority import SPARK_CGROUP, join_spark_cgroup
from adclick.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, env="test", home=Path("/tmp/adclick-unit-unused"), **overrides)


def test_cgroup_v2_gets_the_weight_and_the_processes(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert join_spark_cgroup(_settings(spark_cpu_weight=10), (0, 4242), root=tmp_path)
    group = tmp_path / SPARK_CGROUP
    assert (group / "cpu.weight").read_text() == "10\n"
    assert (group / "cgroup.procs").read_text() == "4242\n"  # the last write: the file takes one pid a write


def test_cgroup_v1_gets_shares_from_the_weight(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cgroup.procs").write_text("")
    assert join_spark_cgroup(_settings(spark_cpu_weight=10), root=tmp_path)
    group = tmp_path / "cpu" / SPARK_CGROUP
    assert (group / "cpu.shares").read_text() == "102\n"  # 10 % of the default 1024
    assert (group / "cgroup.procs").read_text() == f"{os.getpid()}\n"


def test_no_cgroups_or_weight_zero_changes_nothing(tmp_path: Path) -> None:
    assert not join_spark_cgroup(_settings(), root=tmp_path)  # no cgroup file system here
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "cgroup.controllers").write_text("cpu\n")
    assert not join_spark_cgroup(_settings(spark_cpu_weight=0), root=tmp_path)
    assert not (tmp_path / SPARK_CGROUP).exists()


def test_a_cgroup_v2_without_the_cpu_controller_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    assert not join_spark_cgroup(_settings(), root=tmp_path)
    assert not (tmp_path / SPARK_CGROUP).exists()


def test_a_write_that_fails_is_reported_as_not_joined(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu\n")
    (tmp_path / SPARK_CGROUP).write_text("a file where the cgroup directory should be")
    assert not join_spark_cgroup(_settings(), root=tmp_path)  # OSError caught, not raised


def test_the_api_gets_its_own_heavier_cgroup(tmp_path: Path) -> None:
    from adclick.priority import API_CGROUP, join_api_cgroup

    (tmp_path / "cgroup.controllers").write_text("cpu\n")
    assert join_api_cgroup(_settings(ingest_cpu_weight=400), root=tmp_path)
    assert (tmp_path / API_CGROUP / "cpu.weight").read_text() == "400\n"
    assert (tmp_path / API_CGROUP / "cgroup.procs").read_text() == f"{os.getpid()}\n"
    assert not join_api_cgroup(_settings(ingest_cpu_weight=0), root=tmp_path / "elsewhere")


def test_a_command_started_in_a_cgroup_keeps_its_arguments_and_its_process() -> None:
    import subprocess
    import sys

    from adclick.priority import KAFKA_CGROUP, in_cgroup
    from infra.kafka_service import kafka_service

    command = [sys.executable, "-c", "import os, sys; print(os.getpid(), ' '.join(sys.argv[1:]))", "a b", "c"]
    assert in_cgroup(KAFKA_CGROUP, 0, command) == command
    wrapped = in_cgroup(KAFKA_CGROUP, 1, command)  # a list only: nothing runs
    proc = subprocess.run(
        [sys.executable, "-m", "adclick.priority", "adclick-test-unused", "0", "--", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.split(" ", 1)[1] == "a b c\n"  # the command ran, its arguments intact
    assert wrapped[-len(command) :] == command
    broker = kafka_service(_settings(kafka_cpu_weight=400)).command
    assert broker[1:6] == ["-m", "adclick.priority", KAFKA_CGROUP, "400", "--"]
    assert broker[-2] == "kafka.Kafka"
    assert kafka_service(_settings(kafka_cpu_weight=0)).command[0].endswith("java")


def test_the_exec_helper_refuses_a_bad_command_line() -> None:
    from adclick.priority import main

    assert main(["adclick-kafka", "400", "java"]) == 2  # no "--"
