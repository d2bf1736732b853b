"""The per-tick artifact shown in the Prefect UI: markdown summary and a table (no secrets)."""

from __future__ import annotations

from typing import Any

from zapflow.balance.tick import TickReport

__all__ = ["tick_markdown", "tick_table"]


def _amps(values: tuple[float, float, float] | None) -> str:
    return "/".join(f"{v:g}" for v in values) + " A" if values else "-"


def tick_table(report: TickReport) -> list[dict[str, Any]]:
    """One row per figure, for `create_table_artifact`."""
    rows: list[tuple[str, Any]] = [
        ("installation", report.installation_id),
        ("scheduled", report.scheduled_at.isoformat()),
        ("status", report.status),
        ("dry run", report.dry_run),
        ("mode", report.policy_mode),
        ("setpoint L1/L2/L3", _amps(report.setpoint_a)),
        ("phases", report.phases),
        ("switch current", report.switch_current_a),
        ("reason", report.reason),
        ("binding constraint", report.binding_constraint),
        ("hold", report.hold),
        ("write", report.write_outcome or "not needed"),
        ("verification of last write", report.verification),
        ("charger state from", report.state_source),
        ("history unavailable", report.history_unavailable),
        ("cold start", report.cold_start),
    ]
    rows += [(f"forecast {k}", round(v)) for k, v in report.forecast.items()]
    rows += [
        (f"API {c['method']} {c['endpoint']}", f"{c['status']} ({c['attempts']} attempt(s))")
        for c in report.api_calls
    ]
    return [{"figure": k, "value": "" if v is None else str(v)} for k, v in rows]


def tick_markdown(report: TickReport) -> str:
    """A short human summary."""
    lines = [
        f"### Tick {report.scheduled_at:%Y-%m-%d %H:%M} UTC, installation `{report.installation_id}`",
        "",
        (
            f"**{report.status}**{' (dry run)' if report.dry_run else ''}: "
            f"setpoint **{_amps(report.setpoint_a)}**, {report.phases or '-'} phase(s), "
            f"reason `{report.reason}`, bound by `{report.binding_constraint}`."
        ),
        "",
        f"Write: {report.write_outcome or 'not needed'}"
        + (f" (hold: {report.hold})" if report.hold else "")
        + (f"; last write verified: {report.verification}" if report.verification else ""),
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {round(v)} W |" for k, v in report.forecast.items()]
    lines += [
        f"| API {c['method']} {c['endpoint']} | {c['status']} ({c['attempts']} attempt(s)) |"
        for c in report.api_calls
    ]
    if report.notes:
        lines += ["", *(f"- {n}" for n in report.notes)]
    if report.error:
        lines += ["", f"**error**: {report.error}"]
    return "\n".join(lines)
