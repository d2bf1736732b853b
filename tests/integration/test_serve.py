"""`zapflow serve` for real: a local Prefect server, worker, deployments, limits, automations, simulator.

One platform for the module (a server start costs 15-40 s on these machines). Ad-hoc runs go
through the `balance` deployment and the worker exactly as a user's would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import Storage
from tasks.balance import installation_limit
from zapflow.serve import AUTOMATION_PREFIX, Platform, ServeOptions, descendants, start_run
from zapflow.settings import AppSettings, StorageSettings, ZaptecSettings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(data_dir: Path) -> AppSettings:
    return AppSettings(
        _env_file=None,  # type: ignore[call-arg]
        zaptec=ZaptecSettings(_env_file=None),  # type: ignore[call-arg]
        storage=StorageSettings(_env_file=None, data_dir=data_dir),  # type: ignore[call-arg]
    )


def _wait_for(predicate: Any, *, timeout_s: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy (a generous bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Everything `zapflow serve` starts, in this process, with short heartbeat windows."""
    tmp = tmp_path_factory.mktemp("serve")
    options = ServeOptions(
        project_dir=ROOT,
        port=_free_port(),
        prefect_home=tmp / "prefect",
        heartbeat_s=30,
        crash_after_s=50,
        worker_poll_s=2,
    )
    said: list[str] = []
    served = Platform(options, _settings(tmp / "data"), say=said.append)
    served.start()
    served.said = said  # type: ignore[attr-defined]
    try:
        yield served
    finally:
        pids = [c.process.pid for c in served.children]
        below = [p for pid in pids for p in descendants(pid)]
        served.stop()
        left = [p for p in [*pids, *below] if Path(f"/proc/{p}").exists() and _alive(p)]
        assert left == [], f"processes left behind: {left}"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _client() -> Any:
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    return get_client(sync_client=True)


def _with_api(platform: Platform) -> Any:
    from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: PLC0415

    return temporary_settings(updates={PREFECT_API_URL: platform.options.api_url})


def _runs(platform: Platform, deployment: str) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName  # noqa: PLC0415

    with _with_api(platform), _client() as client:
        return list(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))
            )
        )


def _events(platform: Platform, name: str) -> list[dict[str, Any]]:
    """Stored Prefect events named `name` (the REST API, as the UI's event feed reads them)."""
    body = {"filter": {"event": {"name": [name]}}, "limit": 50}  # the most the API pages
    response = httpx.post(f"{platform.options.api_url}/events/filter", json=body, timeout=30)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _automations_fired(platform: Platform, automation: str) -> list[dict[str, Any]]:
    """`prefect.automation.triggered` events of the automation named `automation`."""
    fired = _events(platform, "prefect.automation.triggered")
    return [e for e in fired if e["resource"].get("prefect.resource.name") == automation]


def _post_probe_event(platform: Platform) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "zapflow.test.probe",
        "resource": {"prefect.resource.id": "zapflow.test.probe"},
    }
    response = httpx.post(f"{platform.options.api_url}/events", json=[event], timeout=30)
    response.raise_for_status()


def test_serve_sets_up_pool_deployments_limits_and_automations(platform: Platform) -> None:
    """Pool, deployments, a strict 1-slot limit per installation, 7 automations, meter and ingest running."""
    assert platform.sites is not None
    installation = platform.sites.site[0].installation_id
    with _with_api(platform), _client() as client:
        limit = client.read_global_concurrency_limit_by_name(installation_limit(installation))
        names = sorted(a.name for a in client.read_automations() if a.name.startswith(AUTOMATION_PREFIX))
        balance = client.read_deployment_by_name("balance/balance")
    assert limit.limit == 1
    assert names == [
        "zapflow: alert Service Bus subscription",
        "zapflow: alert ingest failed",
        "zapflow: alert meter failed",
        "zapflow: alert no balance completed for 30 min",
        "zapflow: crash runs silent for 50 s",
        "zapflow: restart ingest",
        "zapflow: restart meter",
    ]
    assert balance.work_pool_name == "zapflow"
    assert [s.schedule.cron for s in balance.schedules] == ["*/15 * * * *"]  # type: ignore[union-attr]
    renew = client_deployment(platform, "renew-subscription/renew-subscription")
    assert [s.schedule.cron for s in renew.schedules] == ["17 3 * * *"]  # type: ignore[union-attr]
    for name in ("meter", "ingest"):
        running = _wait_for(
            lambda name=name: [r for r in _runs(platform, name) if r.state_name == "Running"],
            timeout_s=120,
            what=f"the {name} run serve starts",
        )
        assert len(running) == 1
    storage = Storage(platform.settings.storage)
    _wait_for(
        lambda: storage.read("SELECT count(*) AS n FROM subscription_renewals").to_pylist()[0]["n"] > 0,
        timeout_s=120,
        what="the ingest run to connect to the local broker",
    )


def client_deployment(platform: Platform, name: str) -> Any:
    """A deployment by `flow/deployment` name."""
    with _with_api(platform), _client() as client:
        return client.read_deployment_by_name(name)


def test_adhoc_dry_run_of_the_deployment_completes_with_artifacts_and_ledger(platform: Platform) -> None:
    """The acceptance: an ad-hoc dry run through the worker ends Completed, artifacts and ledger rows."""
    said: list[str] = []
    state = start_run(
        platform.options.api_url,
        "balance",
        {"dry_run": True, "requested_by": "ci", "reason": "deployed dry run"},
        wait_s=240,
        say=said.append,
    )
    assert state == "Completed", said
    run_id = re.search(r"/runs/flow-run/([0-9a-f-]{36})", said[0]).group(1)  # type: ignore[union-attr]
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId  # noqa: PLC0415

    with _with_api(platform), _client() as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    assert sorted(a.type for a in artifacts) == ["markdown", "table"]
    markdown = next(a for a in artifacts if a.type == "markdown")
    assert "dry run" in str(markdown.data).lower()

    storage = Storage(platform.settings.storage)
    ticks = storage.read(
        "SELECT tick_id, requested_by, run_reason, dry_run, status FROM ticks WHERE flow_run_id = ?", [run_id]
    ).to_pylist()
    assert len(ticks) == 1
    assert ticks[0]["requested_by"] == "ci"
    assert ticks[0]["run_reason"] == "deployed dry run"
    assert ticks[0]["dry_run"] is True
    assert ticks[0]["status"] == "done"
    tick_id = ticks[0]["tick_id"]
    posts = storage.read(
        "SELECT count(*) AS n FROM api_calls WHERE tick_id = ? AND method = 'POST'", [tick_id]
    ).to_pylist()
    assert posts == [{"n": 0}]
    intents = storage.read("SELECT payload FROM write_intents WHERE tick_id = ?", [tick_id]).to_pylist()
    assert len(intents) == 1  # the would-be payload


@pytest.mark.parametrize(("deployment", "sig"), [("meter", signal.SIGSTOP), ("ingest", signal.SIGKILL)])
def test_a_long_running_run_silenced_or_killed_is_crashed_and_started_again(
    platform: Platform, deployment: str, sig: signal.Signals
) -> None:
    """SIGSTOP (no heartbeats) or SIGKILL the run's process: it ends Crashed and a new run starts."""
    first = _wait_for(
        lambda: [r for r in _runs(platform, deployment) if r.state_name == "Running"],
        timeout_s=120,
        what=f"a running {deployment} run",
    )[0]
    worker = next(c for c in platform.children if c.name == "worker")
    pid = _wait_for(
        lambda: _flow_run_pid(worker.process.pid, str(first.id)), timeout_s=30, what="the run's process"
    )
    os.kill(pid, sig)
    try:
        crashed = _wait_for(
            lambda: [
                r for r in _runs(platform, deployment) if r.id == first.id and r.state_name == "Crashed"
            ],
            timeout_s=180,
            what=f"the {deployment} run to be marked Crashed",
        )
        assert crashed
        again = _wait_for(
            lambda: [
                r for r in _runs(platform, deployment) if r.id != first.id and r.state_name == "Running"
            ],
            timeout_s=180,
            what=f"a new {deployment} run",
        )
        assert len(again) == 1
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _flow_run_pid(worker_pid: int, flow_run_id: str) -> int | None:
    for pid in descendants(worker_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode() in environ:
            return pid
    return None


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without zapflow's, Prefect's or coverage's variables: what a user's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZAPFLOW_", "PREFECT_", "COV"))}
    return env | {"ZAPFLOW_STORAGE_DATA_DIR": str(tmp_path / "data")} | extra


def _serve_refused(tmp_path: Path, port: int, env: dict[str, str]) -> str:
    """Run `zapflow serve`, expect exit 2 before anything starts; its output on one line."""
    argv = [sys.executable, "-m", "zapflow", "serve", "--port", str(port), "--prefect-home", str(tmp_path)]
    done = subprocess.run(  # noqa: S603 - our own interpreter
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return " ".join(done.stdout.split())


def test_cli_serve_refuses_a_port_in_use_and_an_account_without_password(tmp_path: Path) -> None:
    """Clear errors, exit 2, before anything is started."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert "is in use" in _serve_refused(tmp_path, busy.getsockname()[1], _cli_env(tmp_path))
    account = _cli_env(tmp_path, ZAPFLOW_ZAPTEC_USERNAME="someone@example.com")
    out = _serve_refused(tmp_path, _free_port(), account)
    assert "no password" in out
    assert "ZAPFLOW_ZAPTEC_PASSWORD_BLOCK" in out


def test_cli_serve_starts_and_stops_on_sigterm_leaving_no_process(tmp_path: Path) -> None:
    """The real command: ready, then SIGTERM stops server, worker and flow runs; exit 0."""
    env = _cli_env(tmp_path)
    out = tmp_path / "serve.out"
    argv = [sys.executable, "-m", "zapflow", "serve", "--port", str(_free_port())]
    argv += ["--prefect-home", str(tmp_path / "prefect"), "--worker-poll-s", "2"]
    with out.open("wb") as handle:
        served = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_for(
            lambda: "ready:" in out.read_text() or served.poll() is not None, timeout_s=240, what="serve"
        )
        assert served.poll() is None, out.read_text()
        below = descendants(served.pid)
        assert len(below) >= 2, "a Prefect server and a worker"
        served.send_signal(signal.SIGTERM)
        assert served.wait(timeout=120) == 0, out.read_text()
    finally:
        if served.poll() is None:
            served.kill()
    assert "stopped" in out.read_text()
    assert [p for p in below if _alive(p)] == []


def test_ingest_refused_by_zaptec_ends_failed_and_is_not_restarted(tmp_path: Path) -> None:
    """A 403 on the connection-details endpoint: the ingest run ends Failed, once, and stays so."""
    options = ServeOptions(
        project_dir=ROOT,
        port=_free_port(),
        prefect_home=tmp_path / "prefect",
        worker_poll_s=2,
        env={"ZAPFLOW_ZAPTEC_USER_GROUP_ID": "00000000-1111-2222-3333-444444444444"},  # not ours: 403
    )
    served = Platform(options, _settings(tmp_path / "data"), say=lambda _line: None)
    served.start()
    try:
        failed = _wait_for(
            lambda: [r for r in _runs(served, "ingest") if r.state_name == "Failed"],
            timeout_s=180,
            what="the refused ingest run to fail",
        )
        assert "403" in (failed[0].state.message or "") or "Forbidden" in (failed[0].state.message or "")
        # No blind wait for a restart that should not come: wait until the automations have seen the
        # Failed event (the failed-alert automation fired on it), then until an event posted after
        # that is stored (events are stored in order), and only then look for a restart.
        alert = f"{AUTOMATION_PREFIX}alert ingest failed"
        _wait_for(
            lambda: _automations_fired(served, alert), timeout_s=120, what="the failed-alert automation"
        )
        _post_probe_event(served)
        _wait_for(lambda: _events(served, "zapflow.test.probe"), timeout_s=60, what="the probe event")
        assert _automations_fired(served, f"{AUTOMATION_PREFIX}restart ingest") == []
        assert [r.state_name for r in _runs(served, "ingest")] == ["Failed"]
    finally:
        served.stop()
