"""`zapflow sql`: read-only answers in every format, pending rows included, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from storage import Storage
from tests.support.rows import rows_for
from zapflow.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with 2 merged and 3 pending ticks, configured through the environment."""
    data = tmp_path / "data"
    store = Storage.at(data)
    store.write_batch("ticks", rows_for("ticks", 1, 1, 2))
    store.merge()
    store.write_batch("ticks", rows_for("ticks", 1, 2, 3))
    monkeypatch.setenv("ZAPFLOW_STORAGE_DATA_DIR", str(data))
    return data


QUERY = "SELECT count(*) AS n FROM ticks"


@pytest.mark.usefixtures("data_dir")
def test_table_output_includes_pending_rows() -> None:
    """The default rich table shows merged and pending rows together."""
    result = runner.invoke(app, ["sql", QUERY], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "5" in result.output
    assert "1 row(s)" in result.output


@pytest.mark.usefixtures("data_dir")
def test_no_pending_flag() -> None:
    """--no-pending shows only what is merged."""
    result = runner.invoke(app, ["sql", QUERY, "--no-pending", "--format", "json"])
    assert json.loads(result.output) == [{"n": 2}]


@pytest.mark.usefixtures("data_dir")
def test_csv_output() -> None:
    """CSV goes to stdout with a header row."""
    result = runner.invoke(
        app, ["sql", "SELECT status FROM ticks ORDER BY status LIMIT 2", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ['"status"', '"status-1001000"', '"status-1001001"']


@pytest.mark.usefixtures("data_dir")
def test_json_output_handles_times_and_json() -> None:
    """JSON output is an array of objects; timestamps are ISO strings."""
    result = runner.invoke(
        app, ["sql", "SELECT tick_id, started_at FROM ticks ORDER BY started_at", "--format", "json"]
    )
    rows = json.loads(result.output)
    assert len(rows) == 5
    assert rows[0]["started_at"].endswith("+00:00")


@pytest.mark.usefixtures("data_dir")
def test_parquet_output_needs_a_file(tmp_path: Path) -> None:
    """Parquet is written to --output; without one the command explains."""
    out = tmp_path / "ticks.parquet"
    assert runner.invoke(app, ["sql", "SELECT * FROM ticks", "--format", "parquet"]).exit_code == 2
    result = runner.invoke(app, ["sql", "SELECT * FROM ticks", "--format", "parquet", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 5


@pytest.mark.usefixtures("data_dir")
def test_query_from_file(tmp_path: Path) -> None:
    """--file reads the query from a file."""
    query = tmp_path / "q.sql"
    query.write_text(QUERY)
    result = runner.invoke(app, ["sql", "--file", str(query), "--format", "json"])
    assert json.loads(result.output) == [{"n": 5}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "DELETE FROM ticks"], "got DELETE"),
        (["sql", "SELECT 1; SELECT 2"], "one statement"),
        (["sql", "SELECT * FROM read_csv('/etc/passwd')"], "file system operations are disabled"),
        (["sql", "SELECT * FROM no_such_table"], "no_such_table"),
        (["sql"], "give a query or --file"),
    ],
    ids=["delete", "two-statements", "read-file", "unknown-table", "no-query"],
)
@pytest.mark.usefixtures("data_dir")
def test_refusals_are_clear(args: list[str], message: str) -> None:
    """Refused or broken queries exit 2 with the reason, no traceback."""
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
