"""`zapflow serve`: the whole product on one machine, started and stopped as one.

A local Prefect server (UI on 127.0.0.1:4200), the `zapflow` process work pool and a worker, the
deployments of `prefect.yaml`, one strict concurrency limit per installation, the automations that
keep long-running flows alive and raise alerts, and the simulated Zaptec cloud unless a real
account is configured. Every child runs in its own process group, so stopping kills the flow runs
the worker started too: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tasks.balance import installation_limit
from zapflow.balance.simday import site_for
from zapflow.domain.policy import PolicyMode
from zapflow.settings import AppSettings
from zapflow.simulator.server import port_is_free
from zapflow.sites import SiteConfigError, SitesFile, dump_sites, load_sites

__all__ = [
    "AUTOMATION_PREFIX",
    "LONG_RUNNING",
    "Platform",
    "ServeError",
    "ServeOptions",
    "automations_for",
    "descendants",
    "start_run",
]

AUTOMATION_PREFIX = "zapflow: "
LONG_RUNNING = ("meter", "ingest")
"""Deployments that run in bounded runs and are started again when a run ends."""
SCHEDULED = ("balance", "renew-subscription")
WORK_POOL = "zapflow"
MIN_HEARTBEAT_S = 30
_RESET_SIGINT = "import os,signal,sys;signal.signal(2,signal.SIG_DFL);os.execv(sys.argv[1],sys.argv[1:])"
"""A child started from a non-interactive shell inherits SIGINT ignored and then ignores SIGTERM too
(platform notes): exec it through this trampoline with SIGINT back to default."""


class ServeError(RuntimeError):
    """Something `zapflow serve` cannot start with; the message says what to do."""


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve; the defaults are the README's."""

    project_dir: Path
    host: str = "127.0.0.1"
    port: int = 4200
    prefect_home: Path | None = None
    """Prefect's state (database, logs); `<project>/.prefect` unless given."""
    scenario: str = "sunny-day"
    simulator_port: int = 0
    heartbeat_s: int = 30
    crash_after_s: int = 90
    alert_after_s: int = 1800
    worker_poll_s: float = 10.0
    startup_timeout_s: float = 180.0
    start_long_running: bool = True
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the server, worker and flow runs."""

    def __post_init__(self) -> None:
        """Reject windows that would crash healthy runs (Prefect's heartbeat is at least 30 s)."""
        if self.heartbeat_s < MIN_HEARTBEAT_S:
            msg = f"heartbeat_s must be >= {MIN_HEARTBEAT_S} (Prefect's minimum), got {self.heartbeat_s}"
            raise ValueError(msg)
        if self.crash_after_s <= self.heartbeat_s:
            msg = f"crash_after_s ({self.crash_after_s}) must exceed heartbeat_s ({self.heartbeat_s})"
            raise ValueError(msg)

    @property
    def home(self) -> Path:
        """Prefect's home directory."""
        return (self.prefect_home or self.project_dir / ".prefect").resolve()

    @property
    def api_url(self) -> str:
        """The local Prefect API."""
        return f"http://{self.host}:{self.port}/api"


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (from /proc; empty where /proc is missing)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def automations_for(
    deployment_ids: dict[str, Any],
    options: ServeOptions,
    alert_block_id: Any | None,  # noqa: ANN401
) -> list[Any]:
    """The automations `serve` keeps: crash silent runs, restart long-running ones, alert on stalls.

    A long-running run that ends Failed is not restarted (a permanent error would loop); it alerts.
    """
    from prefect.client.schemas.objects import StateType  # noqa: PLC0415
    from prefect.events.actions import (  # noqa: PLC0415
        ChangeFlowRunState,
        DoNothing,
        RunDeployment,
        SendNotification,
    )
    from prefect.events.schemas.automations import AutomationCore as Automation  # noqa: PLC0415
    from prefect.events.schemas.automations import EventTrigger, Posture  # noqa: PLC0415 - loads only here

    def alert(subject: str, body: str) -> Any:  # noqa: ANN401
        if alert_block_id is None:
            return DoNothing()  # the trigger still shows in the UI's event feed
        return SendNotification(block_document_id=alert_block_id, subject=subject, body=body)

    finished = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}
    runs = {"prefect.resource.id": "prefect.flow-run.*"}
    found = [
        Automation(
            name=f"{AUTOMATION_PREFIX}crash runs silent for {options.crash_after_s} s",
            description="A run whose worker died keeps its slot: mark it Crashed when heartbeats stop.",
            trigger=EventTrigger(
                match=runs,
                after={"prefect.flow-run.heartbeat"},
                expect={"prefect.flow-run.heartbeat", *finished},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=options.crash_after_s),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED, message=f"no heartbeat for {options.crash_after_s} s"
                )
            ],
        ),
    ]
    for name in LONG_RUNNING:
        related = {"prefect.resource.id": f"prefect.deployment.{deployment_ids[name]}"}
        found += [
            Automation(
                name=f"{AUTOMATION_PREFIX}restart {name}",
                description=f"Start {name} again when its bounded run ends Completed or Crashed.",
                trigger=EventTrigger(
                    match=runs,
                    match_related=related,
                    expect={"prefect.flow-run.Completed", "prefect.flow-run.Crashed"},
                    posture=Posture.Reactive,
                    threshold=1,
                ),
                actions=[RunDeployment(source="selected", deployment_id=deployment_ids[name])],
            ),
            Automation(
                name=f"{AUTOMATION_PREFIX}alert {name} failed",
                description=f"A {name} run failed with a permanent error: not restarted, someone must look.",
                trigger=EventTrigger(
                    match=runs, match_related=related, expect={"prefect.flow-run.Failed"}, threshold=1
                ),
                actions=[alert(f"zapflow: {name} failed", f"The {name} run failed and was not restarted.")],
            ),
        ]
    found.append(
        Automation(
            name=f"{AUTOMATION_PREFIX}alert Service Bus subscription",
            description="A subscription nears its 14-day expiry, is silent, failed to renew or was refused.",
            trigger=EventTrigger(
                expect={"zapflow.subscription.*"},
                match={"prefect.resource.id": "zapflow.subscription.*"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                alert(
                    "zapflow: Service Bus subscription",
                    "{{ event.event }}: {{ event.payload.message }}",
                )
            ],
        )
    )
    found.append(
        Automation(
            name=f"{AUTOMATION_PREFIX}alert no balance completed for {options.alert_after_s // 60} min",
            description="Installations are not being balanced.",
            trigger=EventTrigger(
                match=runs,
                match_related={"prefect.resource.id": f"prefect.deployment.{deployment_ids['balance']}"},
                expect={"prefect.flow-run.Completed"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=options.alert_after_s),
            ),
            actions=[
                alert(
                    "zapflow: balance stalled",
                    f"No balance run completed in {options.alert_after_s // 60} minutes.",
                )
            ],
        )
    )
    return found


class Platform:
    """Starts the pieces in order, reports progress, and stops them all (in reverse)."""

    def __init__(
        self,
        options: ServeOptions,
        settings: AppSettings,
        *,
        say: Callable[[str], None] = print,
    ) -> None:
        self.options = options
        self.settings = settings
        self.say = say
        self.children: list[_Child] = []
        self.simulator: Any = None
        self.broker: Any = None
        self.sites: SitesFile | None = None
        self.env = dict(os.environ) | options.env
        self.stopping = threading.Event()

    @property
    def simulated(self) -> bool:
        """True when no Zaptec account is configured: the embedded simulator stands in."""
        return self.settings.zaptec.username is None

    # -- start ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Everything up, or a `ServeError` with what to do (anything started is stopped again)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        home = self.options.home
        (home / "logs").mkdir(parents=True, exist_ok=True)
        self.env |= {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.options.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(self.options.heartbeat_s),
            "PREFECT_WORKER_QUERY_SECONDS": str(self.options.worker_poll_s),
        }
        if self.simulated:
            self._start_simulator()
        else:
            self._check_account_config()
        self._start_prefect_server()
        if not self.simulated:
            self._check_account()
        self._ensure_pool()
        deployment_ids = self._deploy()
        self._ensure_limits()
        self._ensure_automations(deployment_ids)
        self._start_worker()
        if self.options.start_long_running:
            self._start_long_running()

    def _start_simulator(self) -> None:
        from zapflow.simulator.broker import BrokerEventSink, attach_broker  # noqa: PLC0415
        from zapflow.simulator.cloud import BrokerEndpoint  # noqa: PLC0415
        from zapflow.simulator.scenarios import build, rebased, scenario  # noqa: PLC0415 - heavy deps
        from zapflow.simulator.server import SimulatorServer  # noqa: PLC0415

        try:
            chosen = rebased(scenario(self.options.scenario), datetime.now(UTC))
        except ValueError as exc:
            raise ServeError(str(exc)) from None
        sink = BrokerEventSink(BrokerEndpoint().topic)
        cloud = build(chosen, scale=1.0, sink=sink)
        data_dir = self.settings.storage.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # The local Service Bus broker: the cloud's connection details point at it.
        self.broker = attach_broker(cloud, sink, data_dir=data_dir / "broker").start()
        self.simulator = SimulatorServer(cloud, port=self.options.simulator_port)
        url = self.simulator.start()
        sites = []
        for inst in cloud.world.installations.values():
            has_pv = (spec := chosen.sites.get(inst.spec.name)) is not None and spec.pv_kwp > 0
            mode = PolicyMode.SOLAR if has_pv else PolicyMode.FUSE_ONLY
            sites.append(site_for(chosen, cloud, url, mode=mode, name=inst.spec.name))
        self.sites = SitesFile(site=tuple(sites))
        sites_path = data_dir / "simulator-sites.toml"
        sites_path.write_text(dump_sites(self.sites), encoding="utf-8")
        self.env |= {
            "ZAPFLOW_ZAPTEC_BASE_URL": url,
            "ZAPFLOW_ZAPTEC_USERNAME": cloud.account.username,
            "ZAPFLOW_ZAPTEC_PASSWORD": cloud.account.password,  # the simulator's published demo login
            "ZAPFLOW_SITES_FILE": str(sites_path),
            "ZAPFLOW_STORAGE_DATA_DIR": str(data_dir),
        }
        self.env.setdefault("ZAPFLOW_ZAPTEC_USER_GROUP_ID", cloud.account.user_group_id)
        self.say(f"simulator    {url}  (scenario {chosen.name}, real time, no account needed)")
        where = f"amqp://{self.broker.host}:{self.broker.port}"
        self.say(f"service bus  {where}  (local broker, state in {data_dir / 'broker'})")
        self.say(f"sites file   {sites_path}  ({len(sites)} simulated installation(s), writes enabled)")

    def _check_account_config(self) -> None:
        zaptec = self.settings.zaptec
        if zaptec.password is None and zaptec.password_block is None:
            msg = (
                "ZAPFLOW_ZAPTEC_USERNAME is set but there is no password: set ZAPFLOW_ZAPTEC_PASSWORD in "
                "the environment or .env, or store it in a Prefect Secret block and set "
                "ZAPFLOW_ZAPTEC_PASSWORD_BLOCK to the block's name "
                "(or unset the username to use the simulator)"
            )
            raise ServeError(msg)
        try:
            self.sites = load_sites(self.settings.sites_file)
        except SiteConfigError as exc:
            raise ServeError(str(exc)) from None
        self.say(f"Zaptec       {zaptec.base_url} as {zaptec.username}")
        self.say(f"sites file   {self.settings.sites_file}  ({len(self.sites.site)} installation(s))")

    def _check_account(self) -> None:
        """Log in once and check every configured installation is visible to the account."""
        from tasks.credentials import resolved_settings  # noqa: PLC0415 - reads a Secret block
        from zapflow.zaptec import AccountRegistry, ZaptecClient  # noqa: PLC0415
        from zapflow.zaptec.errors import AuthenticationFailed, ZaptecError  # noqa: PLC0415

        with self._prefect_settings():
            try:
                settings = resolved_settings(self.settings)
            except ValueError as exc:
                raise ServeError(str(exc)) from None
        client = ZaptecClient.from_settings(settings.zaptec, accounts=AccountRegistry())
        try:
            visible = {i.installation_id for i in client.list_installations()}
        except AuthenticationFailed:
            msg = "Zaptec refused the username/password: check ZAPFLOW_ZAPTEC_USERNAME and the password"
            raise ServeError(msg) from None
        except ZaptecError as exc:
            msg = f"cannot reach Zaptec at {settings.zaptec.base_url}: {exc}"
            raise ServeError(msg) from None
        finally:
            client.close()
        assert self.sites is not None  # noqa: S101 - set by _check_account_config
        missing = [s.installation_id for s in self.sites.site if s.installation_id not in visible]
        if missing:
            msg = f"the account cannot see installation(s) {', '.join(missing)}: check the sites file"
            raise ServeError(msg)

    def _spawn(self, name: str, argv: list[str]) -> _Child:
        log = self.options.home / "logs" / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own executables, no shell
            [sys.executable, "-c", _RESET_SIGINT, *argv],
            cwd=self.options.project_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its flow runs too
        )
        handle.close()
        child = _Child(name, process, log)
        self.children.append(child)
        return child

    def _prefect(self) -> str:
        return str(Path(sys.executable).with_name("prefect"))

    def _start_prefect_server(self) -> None:
        if not port_is_free(self.options.host, self.options.port):
            msg = (
                f"{self.options.host}:{self.options.port} is in use (another `zapflow serve` or Prefect "
                "server?): stop it or pick another port with --port"
            )
            raise ServeError(msg)
        server = self._spawn(
            "server",
            [
                self._prefect(),
                "server",
                "start",
                "--host",
                self.options.host,
                "--port",
                str(self.options.port),
            ],
        )
        self.say(f"Prefect      starting the server (log {server.log})")
        deadline = time.monotonic() + self.options.startup_timeout_s
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                msg = f"the Prefect server exited ({server.process.returncode}); see {server.log}"
                raise ServeError(msg)
            if _healthy(self.options.api_url, timeout_s=2):
                self.say(f"Prefect      UI {self.options.api_url.removesuffix('/api')}")
                return
            if self.stopping.wait(0.5):
                msg = "stopped while the Prefect server was starting"
                raise ServeError(msg)
        waited = f"{self.options.startup_timeout_s:.0f} s"
        msg = f"the Prefect server did not answer within {waited}; see {server.log}"
        raise ServeError(msg)

    @contextlib.contextmanager
    def _prefect_settings(self) -> Iterator[None]:
        from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: PLC0415

        with temporary_settings(updates={PREFECT_API_URL: self.options.api_url}):
            yield

    def _ensure_pool(self) -> None:
        from prefect.client.orchestration import get_client  # noqa: PLC0415
        from prefect.client.schemas.actions import WorkPoolCreate  # noqa: PLC0415
        from prefect.exceptions import ObjectAlreadyExists  # noqa: PLC0415

        with (
            self._prefect_settings(),
            get_client(sync_client=True) as client,
            contextlib.suppress(ObjectAlreadyExists),
        ):
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
        self.say(f"work pool    {WORK_POOL} (process)")

    def _deploy(self) -> dict[str, Any]:
        """`prefect deploy --all` from the checkout; returns the deployment ids by name."""
        from prefect.client.orchestration import get_client  # noqa: PLC0415

        self.say("deploying    prefect.yaml")
        done = subprocess.run(  # noqa: S603 - our own executable, no shell
            [self._prefect(), "--no-prompt", "deploy", "--all"],
            cwd=self.options.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=self.options.startup_timeout_s,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            msg = f"`prefect deploy --all` failed ({done.returncode}):\n{tail}"
            raise ServeError(msg)
        ids: dict[str, Any] = {}
        with self._prefect_settings(), get_client(sync_client=True) as client:
            for name in (*SCHEDULED, *LONG_RUNNING):
                ids[name] = client.read_deployment_by_name(f"{name}/{name}").id
        self.say(f"deployments  {', '.join(ids)}")
        return ids

    def _ensure_limits(self) -> None:
        from prefect.client.orchestration import get_client  # noqa: PLC0415
        from prefect.client.schemas.actions import (  # noqa: PLC0415
            GlobalConcurrencyLimitCreate,
            GlobalConcurrencyLimitUpdate,
        )
        from prefect.exceptions import ObjectNotFound  # noqa: PLC0415

        assert self.sites is not None  # noqa: S101 - set before the server starts
        names = [installation_limit(s.installation_id) for s in self.sites.site]
        with self._prefect_settings(), get_client(sync_client=True) as client:
            for name in names:
                try:
                    client.read_global_concurrency_limit_by_name(name)
                    client.update_global_concurrency_limit(
                        name, GlobalConcurrencyLimitUpdate(limit=1, active=True)
                    )
                except ObjectNotFound:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        self.say(f"limits       {len(names)} per-installation concurrency limit(s), 1 slot each")

    def _alert_block(self) -> Any | None:  # noqa: ANN401
        url = self.settings.alert_webhook_url
        if url is None:
            return None
        from prefect.blocks.notifications import CustomWebhookNotificationBlock  # noqa: PLC0415

        block = CustomWebhookNotificationBlock(
            name="zapflow-alerts",
            url=url.get_secret_value(),
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        )
        return block.save("zapflow-alerts", overwrite=True)

    def _ensure_automations(self, deployment_ids: dict[str, Any]) -> None:
        from prefect.client.orchestration import get_client  # noqa: PLC0415

        with self._prefect_settings():
            block_id = self._alert_block()
            wanted = automations_for(deployment_ids, self.options, block_id)
            with get_client(sync_client=True) as client:
                for old in client.read_automations():
                    if old.name.startswith(AUTOMATION_PREFIX):
                        client.delete_automation(old.id)
                for automation in wanted:
                    client.create_automation(automation)
        where = "a webhook" if block_id is not None else "the UI's event feed (set ZAPFLOW_ALERT_WEBHOOK_URL)"
        self.say(f"automations  {len(wanted)} (alerts to {where})")

    def _start_worker(self) -> None:
        worker = self._spawn(
            "worker", [self._prefect(), "worker", "start", "--pool", WORK_POOL, "--type", "process"]
        )
        self.say(f"worker       started (log {worker.log})")

    def _start_long_running(self) -> None:
        from prefect.client.orchestration import get_client  # noqa: PLC0415
        from prefect.client.schemas.filters import (  # noqa: PLC0415
            DeploymentFilter,
            DeploymentFilterName,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType  # noqa: PLC0415
        from prefect.deployments import run_deployment  # noqa: PLC0415

        active = [StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
        with self._prefect_settings(), get_client(sync_client=True) as client:
            for name in LONG_RUNNING:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))
                    ),
                )
                if not runs:
                    run_deployment(f"{name}/{name}", timeout=0)
                    self.say(f"started      {name} (long-running, restarted when a run ends)")

    # -- run and stop -----------------------------------------------------------------------------

    def wait(self) -> int:
        """Block until asked to stop (0) or until a child dies on its own (1)."""
        while not self.stopping.wait(1.0):
            for child in self.children:
                if child.process.poll() is not None:
                    self.say(f"{child.name} exited ({child.process.returncode}); see {child.log}")
                    return 1
        return 0

    def request_stop(self, *_: object) -> None:
        """Signal handler: ask `wait` to return."""
        self.stopping.set()

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the worker (and its flow runs), then the server, then the simulator."""
        for child in reversed(self.children):
            _stop_group(child.process, grace_s)
        self.children.clear()
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def _stop_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left of it (and below it)."""
    below = descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # A flow run may have left the group; nothing of ours survives a stop.
    for pid in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _healthy(api_url: str, *, timeout_s: float) -> bool:
    """True when a Prefect server answers its health check at `api_url`."""
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout_s).status_code == httpx.codes.OK
    except httpx.HTTPError:
        return False


def start_run(
    api_url: str,
    deployment: str,
    parameters: dict[str, Any],
    *,
    wait_s: float | None,
    say: Callable[[str], None] = print,
) -> str:
    """Start an ad-hoc run of `deployment` on the server at `api_url`; its final state when waiting.

    Returns the state's name ("Scheduled" when not waiting). Raises ServeError when no server answers.
    """
    if not _healthy(api_url, timeout_s=5):
        msg = f"no Prefect server answers at {api_url}: start one with `zapflow serve` (or set --api-url)"
        raise ServeError(msg)
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.objects import FlowRun  # noqa: PLC0415
    from prefect.deployments import run_deployment  # noqa: PLC0415
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415
    from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: PLC0415

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            run = run_deployment(f"{deployment}/{deployment}", parameters=parameters, timeout=0)
        except ObjectNotFound:
            msg = f"no deployment {deployment!r} on {api_url}: `zapflow serve` deploys prefect.yaml"
            raise ServeError(msg) from None
        assert isinstance(run, FlowRun)  # noqa: S101 - the sync call returns the run itself
        say(f"flow run {run.name}: {api_url.removesuffix('/api')}/runs/flow-run/{run.id}")
        state = (run.state.name if run.state else None) or "Scheduled"
        if wait_s is None:
            return state
        deadline = time.monotonic() + wait_s
        with get_client(sync_client=True) as client:
            while True:
                current = client.read_flow_run(run.id).state
                if current is not None and current.name != state:
                    state = current.name or state
                    say(f"  {state}")
                if (current is not None and current.is_final()) or time.monotonic() > deadline:
                    return state
                time.sleep(1.0)
