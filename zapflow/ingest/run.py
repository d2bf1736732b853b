"""The ingest flow's body: build client, details provider, source and sink from settings; run.

`ingest_for` is the long-running stream (bounded by `duration_s`, SIGTERM ends it cleanly) and,
with `drain=True`, the daily renewal: the same code, ending once the subscription is empty, so
whatever it receives is stored and completed, never locked and dropped.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage import Storage, StorageError
from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest.sink import Alert, OutboxSink
from zapflow.servicebus import (
    Consumer,
    ConsumerOptions,
    ConsumerStats,
    EventSink,
    EventSource,
    ReceivedMessage,
    SourceRejected,
    SourceUnavailable,
)
from zapflow.settings import AppSettings, IngestSettings
from zapflow.sites import SiteConfig
from zapflow.zaptec import ZaptecClient
from zapflow.zaptec.client import AccountRegistry
from zapflow.zaptec.errors import NotFound, PermanentError, ZaptecError

__all__ = [
    "Feed",
    "IngestReport",
    "RenewReport",
    "feeds_for",
    "ingest_for",
    "plan_feeds",
    "renew_subscription",
    "renewal_due",
]

log = logging.getLogger("zapflow.ingest")
Connect = Callable[[ConnectionDetails], EventSource]
_JOIN_SLICE_S = 0.5


@dataclass
class IngestReport(ConsumerStats):
    """What one ingest (or renewal) run did: the consumer's counts, plus what the sink saw."""

    unknown_chargers: int = 0
    """Chargers outside the configured installations whose events were stored (flagged)."""
    feeds: int = 1
    """Subscriptions drained: 1 (user group) or one per installation (legacy)."""
    feeds_renewed: int = 0
    """Feeds that connected and received at least once (a renewal needs every one)."""
    feeds_failed: list[str] = field(default_factory=list)
    """`label: last error` of each feed that never connected and received."""

    @classmethod
    def combined(cls, per_feed: list[tuple[str, ConsumerStats]]) -> IngestReport:
        """The feeds' counts added up (`waited_s` too, though feeds wait side by side)."""
        report = cls(feeds=len(per_feed))
        for label, stats in per_feed:
            for name in ("messages", "stored", "quarantined", "batches", "connects", "failures", "renewals"):
                setattr(report, name, getattr(report, name) + getattr(stats, name))
            report.waited_s += stats.waited_s
            report.keys += [k for k in stats.keys if k not in report.keys]
            if stats.renewals > 0:
                report.feeds_renewed += 1
            else:
                report.feeds_failed.append(f"{label}: {stats.last_error or 'no receive within the bound'}")
        failed_first = [stats for _, stats in per_feed if stats.renewals == 0] + [s for _, s in per_feed]
        report.last_error = next((s.last_error for s in failed_first if s.last_error), None)
        return report

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the flow's return value)."""
        return asdict(self)


@dataclass(frozen=True)
class Feed:
    """One subscription to drain: where its connection details come from (asked at every connect)."""

    label: str
    details: Callable[[], ConnectionDetails]


def _ask(
    label: str, fetch: Callable[[], ConnectionDetails], *, keep: tuple[type[ZaptecError], ...] = ()
) -> ConnectionDetails:
    """`fetch()`, its Zaptec API failures (other than `keep`) translated for the consumer.

    `SourceRejected` for 403, 401 or no subscription (retrying cannot help); `SourceUnavailable`
    otherwise (the consumer reconnects later and asks again).
    """
    try:
        return fetch()
    except keep:
        raise
    except PermanentError as exc:
        msg = f"connection details for {label}: {type(exc).__name__}: {exc}"
        raise SourceRejected(msg) from None
    except ZaptecError as exc:
        msg = f"connection details for {label}: {type(exc).__name__}: {exc}"
        raise SourceUnavailable(msg) from None


def _fetcher(label: str, fetch: Callable[[], ConnectionDetails]) -> Callable[[], ConnectionDetails]:
    """`fetch` as a feed's details provider (see `_ask`)."""
    return lambda: _ask(label, fetch)


def _group_feed(
    client: ZaptecClient,
    user_group_id: str,
    probed: ConnectionDetails,
    *,
    fall_back: bool,
    replan: Callable[[], None] | None,
) -> Feed:
    """The user group's feed; its first connect uses the probe's answer (one call fewer per run)."""
    label = f"user group {user_group_id}"
    first = [probed]

    def group_details() -> ConnectionDetails:
        if first:
            return first.pop()
        try:
            return client.get_user_group_connection_details(user_group_id)
        except NotFound:
            if not fall_back or replan is None:
                raise
            replan()
            msg = f"{label} no longer has messaging; the next run reads the legacy subscriptions"
            raise SourceUnavailable(msg) from None

    return Feed(label, _fetcher(label, group_details))


def feeds_for(
    client: ZaptecClient,
    *,
    user_group_id: str | None,
    installation_ids: list[str],
    replan: Callable[[], None] | None = None,
) -> list[Feed]:
    """The user group's subscription, else one legacy subscription per configured installation.

    Legacy is used when no user group is configured or the user group has no messaging (404); the
    choice is made once per run, on a clear answer. Raises `SourceRejected` when there is nothing
    to ask or the user group refuses access, and `SourceUnavailable` when the user group cannot be
    asked right now (the caller retries: guessing could pick the wrong model for the whole run).
    A user group that starts answering 404 later calls `replan` (the run should end, so the next
    one chooses again) when installations are configured to fall back to.
    """
    if user_group_id:
        label = f"user group {user_group_id}"
        try:
            probed = _ask(
                label, lambda: client.get_user_group_connection_details(user_group_id), keep=(NotFound,)
            )
        except NotFound:
            if not installation_ids:
                msg = f"{label} has no Service Bus messaging and no installation is set"
                raise SourceRejected(msg) from None
            log.warning("%s has no messaging; reading the legacy per-installation subscriptions", label)
        else:
            return [
                _group_feed(client, user_group_id, probed, fall_back=bool(installation_ids), replan=replan)
            ]
    unique = list(dict.fromkeys(i.lower() for i in installation_ids))
    if not unique:
        msg = "no user group id (ZAPFLOW_ZAPTEC_USER_GROUP_ID) and no installation to ask for details"
        raise SourceRejected(msg)
    return [
        Feed(
            f"installation {i}",
            _fetcher(f"installation {i}", functools.partial(client.get_installation_connection_details, i)),
        )
        for i in unique
    ]


def plan_feeds(  # noqa: PLR0913 - keyword-only: where to ask, how long to keep asking
    client: ZaptecClient,
    *,
    user_group_id: str | None,
    installation_ids: list[str],
    options: ConsumerOptions,
    clock: Clock,
    stop: threading.Event,
    deadline: float,
) -> list[Feed] | SourceUnavailable:
    """`feeds_for`, asked again with the consumer's backoff while the answer is not clear.

    Returns the last `SourceUnavailable` when `stop` or the deadline comes first.
    """
    attempt = 0
    while True:
        try:
            return feeds_for(
                client, user_group_id=user_group_id, installation_ids=installation_ids, replan=stop.set
            )
        except SourceUnavailable as exc:
            now = clock.monotonic()
            if stop.is_set() or now >= deadline:
                return exc
            wait = min(options.backoff_max_s, options.backoff_initial_s * 2**attempt, deadline - now)
            attempt += 1
            log.warning("%s; asking again in %.0f s", exc, wait)
            end = now + wait
            while not stop.is_set() and clock.monotonic() < end:
                clock.sleep(min(1.0, end - clock.monotonic()))


def _azure_connect(settings: IngestSettings) -> Connect:
    from zapflow.servicebus.azure import AzureEventSource, AzureOptions  # noqa: PLC0415 - the SDK loads only here

    options = AzureOptions(prefetch=settings.prefetch, websocket=settings.websocket)
    return lambda details: AzureEventSource(details, options)


def consumer_options(settings: IngestSettings) -> ConsumerOptions:
    """The consumer's knobs from settings."""
    return ConsumerOptions(
        batch_size=settings.batch_size,
        max_wait_s=settings.max_wait_s,
        backoff_initial_s=settings.backoff_initial_s,
        backoff_max_s=settings.backoff_max_s,
        healthy_after_s=settings.healthy_after_s,
        refresh_details_s=settings.refresh_details_s,
        flush_every_s=settings.flush_every_s,
    )


def known_chargers(client: ZaptecClient, sites: list[SiteConfig]) -> dict[str, str | None]:
    """Charger id -> installation id for the configured installations (from `GET /api/chargers`)."""
    wanted = {s.installation_id.lower() for s in sites}
    return {
        c.charger_id.lower(): c.installation_id
        for c in client.list_chargers()
        if c.installation_id is not None and c.installation_id.lower() in wanted
    }


def ingest_for(  # noqa: PLR0913 - keyword-only seams with production defaults
    sites: list[SiteConfig],
    settings: AppSettings,
    *,
    duration_s: float,
    drain: bool = False,
    reason: str = "start",
    clock: Clock = SYSTEM_CLOCK,
    connect: Connect | None = None,
    on_alert: Alert | None = None,
    stop: threading.Event | None = None,
) -> IngestReport:
    """Receive into storage for `duration_s` (SIGTERM ends it cleanly); raises `SourceRejected`.

    `connect` builds an `EventSource` from details (default: the azure-servicebus SDK).
    """
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return _ingest(
            sites, settings, duration_s=duration_s, drain=drain, reason=reason, clock=clock,
            connect=connect or _azure_connect(settings.ingest), on_alert=on_alert, stop=stop,
        )  # fmt: skip
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _ingest(  # noqa: PLR0913 - ingest_for's arguments
    sites: list[SiteConfig],
    settings: AppSettings,
    *,
    duration_s: float,
    drain: bool,
    reason: str,
    clock: Clock,
    connect: Connect,
    on_alert: Alert | None,
    stop: threading.Event,
) -> IngestReport:
    storage = Storage(settings.storage, clock=clock)
    storage.ensure_ready()
    with ExitStack() as stack:
        client = stack.enter_context(
            ZaptecClient.from_settings(settings.zaptec, accounts=AccountRegistry(), clock=clock)
        )
        try:
            chargers = known_chargers(client, sites)
        except PermanentError as exc:
            msg = f"listing chargers: {type(exc).__name__}: {exc}"
            raise SourceRejected(msg) from None
        except ZaptecError as exc:
            chargers = {}  # the stream matters more; events are stored and flagged unknown meanwhile
            log.warning("could not list chargers (%s); events will be flagged unknown", exc)
        sink = OutboxSink(
            storage,
            chargers=chargers,
            clock=clock,
            activity_every_s=settings.ingest.activity_every_s,
            silent_after_s=settings.ingest.silent_after_s,
            on_alert=on_alert,
        )
        options = consumer_options(settings.ingest)
        deadline = clock.monotonic() + duration_s
        feeds = plan_feeds(
            client,
            user_group_id=settings.zaptec.user_group_id,
            installation_ids=[s.installation_id for s in sites],
            options=options,
            clock=clock,
            stop=stop,
            deadline=deadline,
        )
        if isinstance(feeds, SourceUnavailable):
            # Ends Completed, so the long-running pattern starts the next run, which asks again.
            log.warning("ingest: no clear answer on where to read within the run (%s)", feeds)
            return IngestReport(failures=1, last_error=str(feeds), feeds_failed=[str(feeds)])
        report = _run_feeds(
            feeds, connect, sink, clock=clock, options=options,
            duration_s=max(0.0, deadline - clock.monotonic()), stop=stop, drain=drain, reason=reason,
        )  # fmt: skip
    report.unknown_chargers = len(sink.unknown_chargers)
    return report


class _LockedSink:
    """One sink shared by several consumer threads, one call at a time.

    The sink's bookkeeping and its outbox writes are not meant for concurrent use.
    """

    def __init__(self, inner: EventSink) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
        with self._lock:
            return self._inner.land(key, messages, received_at=received_at)

    def activity(self, key: str, *, at: datetime, details_refreshed: bool) -> None:
        with self._lock:
            self._inner.activity(key, at=at, details_refreshed=details_refreshed)

    def renewal(self, key: str, *, at: datetime, reason: str, outcome: str, received: int) -> None:
        with self._lock:
            self._inner.renewal(key, at=at, reason=reason, outcome=outcome, received=received)

    def flush(self, *, at: datetime) -> None:
        with self._lock:
            self._inner.flush(at=at)


def _run_feeds(  # noqa: PLR0913 - the consumer's arguments, per feed
    feeds: list[Feed],
    connect: Connect,
    sink: EventSink,
    *,
    clock: Clock,
    options: ConsumerOptions,
    duration_s: float,
    stop: threading.Event,
    drain: bool,
    reason: str,
) -> IngestReport:
    """One consumer per feed; several (legacy per-installation) run in threads over one locked sink.

    A permanent failure of any feed stops them all and is raised: the run ends Failed with the
    reason, as it does with one feed, rather than quietly carrying on with part of the chargers.
    """
    shared = sink if len(feeds) == 1 else _LockedSink(sink)
    consumers = [Consumer(f.details, connect, shared, clock=clock, options=options) for f in feeds]

    def run(index: int) -> None:
        consumers[index].run(duration_s=duration_s, stop=stop, drain=drain, reason=reason)

    if len(feeds) == 1:
        run(0)
    else:
        log.info("ingest: %d feeds (%s)", len(feeds), ", ".join(f.label for f in feeds))
        _run_threads(len(feeds), run, stop)
    return IngestReport.combined([(f.label, c.stats) for f, c in zip(feeds, consumers, strict=True)])


def _run_threads(count: int, target: Callable[[int], None], stop: threading.Event) -> None:
    """Run `target(i)` for each i in threads; the first failure stops the others and is raised.

    The main thread waits in short slices so its SIGTERM handler runs; whatever ends the wait
    (a failure, an interrupt) stops every thread and waits for them, so none outlives the run.
    """
    failures: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            failures.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=guarded, args=(i,), name=f"zapflow-ingest-{i}", daemon=True)
        for i in range(count)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=_JOIN_SLICE_S)
    finally:
        if any(t.is_alive() for t in threads):
            stop.set()
        for thread in threads:
            thread.join()
    for extra in failures[1:]:
        log.warning("ingest: another feed also failed: %s", extra)
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class RenewalCheck:
    """Whether the daily renewal should receive, and whether to alert first."""

    due: bool
    alert: str | None
    last_activity_at: datetime | None


_IDLE_DELETE = timedelta(days=14)


def renewal_due(storage: Storage, settings: IngestSettings, *, now: datetime) -> RenewalCheck:
    """Due when a subscription went unused for `renew_after_s`; alert past `expiry_warning_s`.

    The least recently used subscription decides (with legacy feeds, a busy one must not hide an
    idle one). Subscriptions unused for 14 days are gone at Zaptec and no longer count, unless
    nothing newer exists; a subscription the details stopped naming (a host change) still counts
    until then, so its near-expiry alert can be a false one for those days.
    """
    try:
        rows = storage.read(
            "SELECT max(last_activity_at) AS newest, "
            "min(last_activity_at) FILTER (WHERE last_activity_at >= $since) AS oldest, "
            "arg_min(subscription_key, last_activity_at) FILTER (WHERE last_activity_at >= $since) AS key "
            "FROM subscriptions",
            {"since": now - _IDLE_DELETE},
        ).to_pylist()
    except StorageError as exc:
        log.warning("could not read subscription activity (%s); renewing anyway", exc)
        return RenewalCheck(due=True, alert=None, last_activity_at=None)
    row = rows[0] if rows else {}
    last = row.get("oldest") or row.get("newest")
    if last is None:
        return RenewalCheck(due=True, alert=None, last_activity_at=None)
    idle = now - last
    alert = None
    if idle >= timedelta(seconds=settings.expiry_warning_s):
        days = idle.total_seconds() / 86_400
        which = f"subscription {row['key']}" if row.get("key") else "subscription"
        alert = f"{which} unused for {days:.1f} days; Zaptec deletes it after 14"
    return RenewalCheck(
        due=idle >= timedelta(seconds=settings.renew_after_s), alert=alert, last_activity_at=last
    )


@dataclass
class RenewReport:
    """What the daily renewal did: skipped (and why), or the bounded run's report."""

    outcome: str
    """`renewed`, `failed` (never received within the bound), `skipped-ingest-active`, or
    `skipped-recently-used` (a refused renewal raises `SourceRejected`)."""
    last_activity_at: datetime | None = None
    alert: str | None = None
    ingest: IngestReport | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the flow's return value)."""
        return asdict(self)


def renew_subscription(  # noqa: PLR0913 - keyword-only seams with production defaults
    sites: list[SiteConfig],
    settings: AppSettings,
    *,
    ingest_active: bool,
    clock: Clock = SYSTEM_CLOCK,
    connect: Connect | None = None,
    on_alert: Alert | None = None,
) -> RenewReport:
    """The daily renewal: when no ingest run is active and the subscription sat unused, drain it once.

    Whatever it receives is stored and completed like the stream does (no message is locked and
    dropped). Alerts (`on_alert("near-expiry", ...)`) when the subscription was unused for
    `expiry_warning_s`. Raises `SourceRejected` when the subscription is gone or access is refused.
    """
    storage = Storage(settings.storage, clock=clock)
    storage.ensure_ready()
    check = renewal_due(storage, settings.ingest, now=clock.now())
    report = RenewReport(outcome="renewed", last_activity_at=check.last_activity_at, alert=check.alert)
    if check.alert is not None:
        log.warning("%s", check.alert)
        if on_alert is not None:
            on_alert("near-expiry", "", check.alert)
    if ingest_active:
        report.outcome = "skipped-ingest-active"
        return report
    if not check.due:
        report.outcome = "skipped-recently-used"
        return report
    report.ingest = ingest_for(
        sites, settings, duration_s=settings.ingest.renew_max_s, drain=True, reason="renew",
        clock=clock, connect=connect, on_alert=on_alert,
    )  # fmt: skip
    got = report.ingest
    if got.feeds_failed:
        # A feed never connected and received within the bound: its subscription was not renewed.
        report.outcome = "failed"
        message = f"renewal failed for {len(got.feeds_failed)} of {got.feeds} subscription(s): " + "; ".join(
            got.feeds_failed
        )
        log.warning("%s", message)
        if on_alert is not None:
            on_alert("renewal-failed", ",".join(got.keys) or "unknown", message)
    return report
