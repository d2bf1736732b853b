"""The `zapflow` command line: demo round trip, clear errors without credentials."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storage import Storage
from zapflow import __version__
from zapflow.cli import app

runner = CliRunner()


def test_demo_runs_ticks_on_the_simulator_and_summarises(tmp_path: Path) -> None:
    """`zapflow demo` runs ticks against the simulator, prints the summary, saves the PNG and ledger."""
    data = tmp_path / "demo"
    plot = tmp_path / "day.png"
    args = ["demo", "--ticks", "6", "--mode", "fuse_only", "--data-dir", str(data), "--plot", str(plot)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for figure in ("EV energy delivered", "solar share", "worst fuse margin", "writes", "phase switches"):
        assert figure in result.output
    assert "6 done" in result.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    ticks = Storage.at(data).read("SELECT count(*) AS n FROM ticks").to_pylist()
    assert ticks == [{"n": 6}]


def test_demo_refuses_an_unknown_mode_and_a_foreign_data_dir(tmp_path: Path) -> None:
    """Bad options exit 2 with a message; the demo never deletes a directory it did not make."""
    bad = runner.invoke(app, ["demo", "--mode", "turbo"])
    assert bad.exit_code == 2
    assert "unknown mode" in bad.output
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    refused = runner.invoke(
        app, ["demo", "--ticks", "1", "--data-dir", str(tmp_path)], env={"COLUMNS": "300"}
    )
    assert refused.exit_code == 2
    assert "more than demo data" in refused.output
    assert (tmp_path / "precious.txt").exists()
    # The refused demo must leave nothing to clean up implicitly (a leaked broker temp dir once
    # surfaced as a ResourceWarning in whichever later test the garbage collector ran in).
    del refused
    gc.collect()


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


def test_run_balance_refuses_a_malformed_override_and_says_when_no_server_answers() -> None:
    """Bad input to `zapflow run balance`: a clear message and exit 2, never a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}/api"  # bound, not listening: refused
        bad = runner.invoke(app, ["run", "balance", "--override", "fuse_margin_a", "--api-url", nobody])
        assert bad.exit_code == 2
        assert "key=number" in bad.output
        down = runner.invoke(app, ["run", "balance", "--api-url", nobody], env={"COLUMNS": "200"})
    assert down.exit_code == 2
    assert f"no Prefect server answers at {nobody}" in down.output
    assert "zapflow serve" in down.output
