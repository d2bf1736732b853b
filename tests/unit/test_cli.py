"""The `zapflow` command line: demo round trip, clear errors without credentials."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from zapflow import __version__
from zapflow.cli import app

runner = CliRunner()


def test_demo_round_trips_through_the_client() -> None:
    """`zapflow demo` lists, reads, writes, verifies and shows the APM refusal and API calls."""
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Zaptec now reports 10 A" in result.output
    assert "refused as expected" in result.output
    assert "POST /api/installation/{id}/update" in result.output
    assert "Garage Go" in result.output


def test_inspect_without_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """No credentials: exit code 2 and the variables to set, no traceback."""
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    for name in ("ZAPFLOW_ZAPTEC_USERNAME", "ZAPFLOW_ZAPTEC_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["inspect"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "ZAPFLOW_ZAPTEC_USERNAME" in result.output
    assert "Traceback" not in result.output


def test_version() -> None:
    """`zapflow version` prints the package version."""
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert __version__ in result.output
