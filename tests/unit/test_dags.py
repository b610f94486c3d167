"""DAG integrity: the DAG folder imports cleanly and every DAG follows the house rules."""

from __future__ import annotations

import ast
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
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{path.name} imports {out.stdout.strip()} at parse time"
