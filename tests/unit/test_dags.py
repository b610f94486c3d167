"""DAG integrity: the DAG folder imports cleanly and every DAG follows the house rules."""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= len(DAG_FILES)


def test_every_dag_has_tags_retries_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id} has no retries"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_explicit(path: Path) -> None:
    tree = ast.parse(path.read_text())
    keywords = {kw.arg for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords}
    assert "catchup" in keywords, f"{path.name} must set catchup explicitly"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_module_imports_nothing_heavy_at_parse_time(path: Path) -> None:
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "mods = ('pyspark', 'great_expectations', 'trino', 'kafka', 'boto3'); "
        "heavy = sorted(m for m in mods if m in sys.modules); "
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], f"{path.name} imports {marker} at parse time"


def test_daily_batch_runs_the_steps_in_order_with_catchup(dagbag) -> None:
    from adclick.settings import Settings

    dag = dagbag.dags["daily_batch"]
    assert dag.catchup is Settings().batch_catchup  # on by default; the test stack turns it off
    assert Settings.model_fields["batch_catchup"].default is True
    order = [
        "bronze_complete",
        "silver",
        "quality",
        "gold",
        "reconcile",
        "advance_watermark",
        "register_tables",
    ]
    assert sorted(dag.task_ids) == sorted(order)
    for before, after in itertools.pairwise(order):
        assert dag.get_task(after).upstream_task_ids == {before}
    assert {"monthly_rollup", "fraud_model_training", "data_quality_report", "trino_catalog"} <= set(
        dagbag.dags
    )


def test_spark_steps_go_through_spark_submit_with_the_configured_master(monkeypatch) -> None:
    from datetime import date

    from adclick.settings import Settings
    from batch_layer.submit import command

    settings = Settings(spark_master="spark://cluster.example:7077")
    cmd = command(settings, "silver", date(2026, 11, 3))
    assert "/bin/spark-submit --master spark://cluster.example:7077 " in cmd
    assert cmd.endswith("batch_layer/submit.py silver --date 2026-11-03")
