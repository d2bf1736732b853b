"""The balance flow under Prefect: an ad-hoc dry run against the simulator over HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.balance import balance
from storage import Storage
from tasks.balance import fuse_guard_tick, installation_limit
from tasks.credentials import resolved_settings
from zapflow.balance.simday import site_for
from zapflow.balance.tick import slot_start, tick_id_for
from zapflow.domain.policy import PolicyMode
from zapflow.simulator.scenarios import build, scenario
from zapflow.simulator.server import SimulatorServer
from zapflow.sites import SitesFile, dump_sites, load_sites


@pytest.fixture
def simulated_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The simulator on loopback, a sites file for it, and zapflow's settings pointing at both."""
    chosen = scenario("sunny-day")
    cloud = build(chosen)
    with SimulatorServer(cloud) as server:
        site = site_for(chosen, cloud, server.base_url, mode=PolicyMode.FUSE_ONLY)
        sites_file = tmp_path / "sites.toml"
        sites_file.write_text(dump_sites(SitesFile(site=(site,))), encoding="utf-8")
        monkeypatch.setenv("ZAPFLOW_SITES_FILE", str(sites_file))
        monkeypatch.setenv("ZAPFLOW_STORAGE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("ZAPFLOW_ZAPTEC_BASE_URL", server.base_url)
        monkeypatch.setenv("ZAPFLOW_ZAPTEC_USERNAME", cloud.account.username)
        monkeypatch.setenv("ZAPFLOW_ZAPTEC_PASSWORD", cloud.account.password)
        yield site.installation_id


async def _create_limit(name: str) -> None:
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate  # noqa: PLC0415

    async with get_client() as client:
        await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


async def _artifacts(flow_run_id: str) -> list[object]:
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId  # noqa: PLC0415

    async with get_client() as client:
        return list(
            await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
        )


@pytest.mark.usefixtures("prefect_server")
def test_ad_hoc_dry_run_completes_with_artifact_and_ledger_rows(simulated_site: str, tmp_path: Path) -> None:
    """Completed, one markdown and one table artifact, and the tick with who asked and why."""
    asyncio.run(_create_limit(installation_limit(simulated_site)))
    state = balance(dry_run=True, requested_by="alice", reason="checking the new fuse", return_state=True)
    assert state.is_completed(), state
    reports = state.result()
    assert [r["status"] for r in reports] == ["done"]
    assert reports[0]["dry_run"] is True
    artifacts = asyncio.run(_artifacts(str(state.state_details.flow_run_id)))
    assert {a.type for a in artifacts} == {"markdown", "table"}  # type: ignore[attr-defined]
    storage = Storage.at(tmp_path / "data")
    ticks = storage.read(
        "SELECT requested_by, run_reason, dry_run, status, flow_run_id FROM ticks"
    ).to_pylist()
    assert ticks == [
        {
            "requested_by": "alice",
            "run_reason": "checking the new fuse",
            "dry_run": True,
            "status": "done",
            "flow_run_id": str(state.state_details.flow_run_id),
        }
    ]
    assert storage.read("SELECT count(*) AS n FROM api_calls WHERE method = 'POST'").to_pylist()[0]["n"] == 0


@pytest.mark.usefixtures("prefect_server")
def test_an_unknown_installation_fails_the_run_with_a_clear_message(simulated_site: str) -> None:
    """Asking for an installation the sites file does not list: Failed, and the message says so."""
    del simulated_site
    state = balance(installation_ids=["not-configured"], dry_run=True, return_state=True)
    assert state.is_failed()
    assert "not-configured" in str(state.message) or "not-configured" in repr(
        state.result(raise_on_failure=False)
    )


@pytest.mark.usefixtures("prefect_server")
def test_the_password_can_come_from_a_prefect_secret_block(
    simulated_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No password in the environment, a Secret block named instead: the tick logs in with it."""
    from prefect.blocks.system import Secret  # noqa: PLC0415

    password = os.environ["ZAPFLOW_ZAPTEC_PASSWORD"]
    monkeypatch.delenv("ZAPFLOW_ZAPTEC_PASSWORD")
    monkeypatch.setenv("ZAPFLOW_ZAPTEC_PASSWORD_BLOCK", "zaptec-password")
    with pytest.raises(ValueError, match="no Prefect Secret block named 'zaptec-password'"):
        resolved_settings()
    Secret(value=password).save("zaptec-password", overwrite=True)
    resolved = resolved_settings()
    assert resolved.zaptec.password is not None
    assert resolved.zaptec.password.get_secret_value() == password
    assert password not in repr(resolved)
    state = balance(installation_ids=[simulated_site], dry_run=True, strict_limit=False, return_state=True)
    assert state.is_completed(), state


@pytest.mark.usefixtures("prefect_server")
def test_the_meter_flows_guard_tick_is_its_own_tick_and_is_recorded(
    simulated_site: str, tmp_path: Path
) -> None:
    """A guard tick never takes the identity of the slot's regular tick, and says why it ran."""
    site = load_sites(Path(os.environ["ZAPFLOW_SITES_FILE"])).get(simulated_site)
    report = fuse_guard_tick(site, "fuse guard: L1 17.0 A > 16 A while charging")
    assert report.status == "done"
    regular = tick_id_for(simulated_site, slot_start(report.scheduled_at))
    assert report.tick_id != regular
    ticks = (
        Storage.at(tmp_path / "data").read("SELECT tick_id, requested_by, run_reason FROM ticks").to_pylist()
    )
    assert [(str(t["tick_id"]), t["requested_by"]) for t in ticks] == [(report.tick_id, "fuse-guard")]
    assert "17.0 A" in ticks[0]["run_reason"]
