"""The `zapflow` command line: demo round trip, clear errors without credentials."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from zapflow import __version__
from zapflow.cli import app

runner = CliRunner()


def test_demo_drives_the_simulator() -> None:
    """`zapflow demo` serves the simulator, writes currents and shows the charger and meter react."""
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Driveway Go 2 (go2)" in result.output
    assert "POST /api/installation/{id}/update" in result.output
    assert "11040" in result.output  # 16 A x 3 x 230 V once 16 A is written
    assert "1380" in result.output  # 6 A x 1 phase: below the 8 A switch current the Go 2 runs 1-phase


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
