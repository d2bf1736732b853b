"""Site configuration: one entry per installation zapflow balances, from a validated TOML file.

The file (`ZAPFLOW_SITES_FILE`, default `sites.toml`; `sites.example.toml` documents every key)
holds what the Zaptec API does not know: where the site is (for clear sky), its main fuse, how to
read its meter, the policy mode and overrides, and whether writes are enabled. A real installation
starts in dry-run: `writes_enabled = true` has to be set for it. Errors name the file, the entry
and the key, so a typo never turns into a silently ignored setting.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from zapflow.domain.phases import PhaseSettings
from zapflow.domain.policy import PolicyMode, PolicySettings
from zapflow.domain.units import NOMINAL_VOLTAGE_V, Earthing

__all__ = [
    "HttpMeterConfig",
    "ReplayMeterConfig",
    "SiteConfig",
    "SiteConfigError",
    "SitesFile",
    "dump_sites",
    "load_sites",
]


class SiteConfigError(ValueError):
    """The sites file is missing, not TOML, or does not validate (the message says where)."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HttpMeterConfig(_Strict):
    """A gateway serving the meter JSON contract (README: "Site meter contract")."""

    kind: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(5.0, gt=0)


class ReplayMeterConfig(_Strict):
    """A JSON-lines file of meter readings, replayed by time."""

    kind: Literal["replay"] = "replay"
    path: Path


MeterConfig = Annotated[HttpMeterConfig | ReplayMeterConfig, Field(discriminator="kind")]


class PolicyOverrides(_Strict):
    """Optional per-site policy knobs; anything left out keeps the default."""

    fuse_margin_a: float | None = Field(None, ge=0)
    fixed_current_a: float | None = Field(None, ge=0)
    deadband_a: float | None = Field(None, ge=0)
    min_write_interval_s: float | None = Field(None, ge=0)
    max_input_age_s: float | None = Field(None, gt=0)
    stale_solar_current_a: float | None = Field(None, ge=0)
    load_quantile: float | None = Field(None, gt=0, lt=1)
    guarded_load_quantile: float | None = Field(None, gt=0, lt=1)
    surplus_quantile: float | None = Field(None, gt=0, lt=1)
    phase_band_w: float | None = Field(None, ge=0)
    phase_min_dwell_s: float | None = Field(None, ge=0)
    phase_switch_budget: int | None = Field(None, ge=0)


class SiteConfig(_Strict):
    """One installation zapflow balances."""

    installation_id: str = Field(min_length=1)
    name: str | None = None
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = "UTC"
    fuse_a: float = Field(gt=0, le=1000, description="Main fuse per phase.")
    pv_kwp: float = Field(0.0, ge=0, le=10000, description="PV peak power (0: no PV).")
    voltage_v: float = Field(NOMINAL_VOLTAGE_V, gt=0)
    network_type: Literal["auto", "TN", "IT"] = "auto"
    """How phase current becomes power; "auto" takes Zaptec's NetworkType for the installation."""
    mode: PolicyMode = PolicyMode.FUSE_ONLY
    writes_enabled: bool = False
    """False: every tick is a dry run (decides and records, never POSTs)."""
    meter: MeterConfig | None = None
    household_peak_window_s: float = Field(86400.0, gt=0)
    """Window for the stale-input fallback's highest household load per phase."""
    policy: PolicyOverrides = PolicyOverrides()

    @pydantic.model_validator(mode="after")
    def _solar_needs_pv(self) -> SiteConfig:
        if self.mode in (PolicyMode.SOLAR, PolicyMode.SOLAR_MIN) and self.pv_kwp <= 0:
            msg = f"mode {self.mode.value} needs pv_kwp (the PV array's peak power) above 0"
            raise ValueError(msg)
        return self

    def policy_settings(self, *, mode: PolicyMode | None = None, **overrides: float) -> PolicySettings:
        """The domain policy settings of this site, with run-time overrides applied last."""
        merged = {k: v for k, v in self.policy.model_dump().items() if v is not None}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        phase_keys = {"phase_band_w": "band_w", "phase_min_dwell_s": "min_dwell_s"}
        phase_keys["phase_switch_budget"] = "switch_budget"
        phases = {phase_keys[k]: merged.pop(k) for k in list(merged) if k in phase_keys}
        unknown = set(merged) - set(PolicySettings.model_fields)
        if unknown:
            msg = f"unknown policy override(s): {', '.join(sorted(unknown))}"
            raise SiteConfigError(msg)
        return PolicySettings(
            mode=mode or self.mode,
            fuse_a=self.fuse_a,
            voltage_v=self.voltage_v,
            earthing=None if self.network_type == "auto" else Earthing(self.network_type),
            phases=PhaseSettings(**phases),
            **merged,
        )


class SitesFile(_Strict):
    """The whole file: a list of `[[site]]` tables with distinct installation ids."""

    site: tuple[SiteConfig, ...] = Field(min_length=1)

    @pydantic.model_validator(mode="after")
    def _distinct(self) -> SitesFile:
        ids = [s.installation_id for s in self.site]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            msg = f"installation_id listed more than once: {', '.join(duplicates)}"
            raise ValueError(msg)
        return self

    def get(self, installation_id: str) -> SiteConfig:
        """The site of `installation_id` (a clear error naming the known ones)."""
        for s in self.site:
            if s.installation_id == installation_id:
                return s
        known = ", ".join(s.installation_id for s in self.site)
        msg = f"installation {installation_id} is not in the sites file (known: {known})"
        raise SiteConfigError(msg)


def parse_sites(text: str, *, where: str = "sites file") -> SitesFile:
    """Validate TOML text as a sites file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{where}: not valid TOML: {exc}"
        raise SiteConfigError(msg) from None
    try:
        return SitesFile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for e in exc.errors(include_url=False):
            loc = list(e["loc"])
            if len(loc) >= 2 and loc[0] == "site" and isinstance(loc[1], int):  # noqa: PLR2004
                entry = data.get("site", [])[loc[1]] if isinstance(data.get("site"), list) else {}
                ident = entry.get("installation_id", "?") if isinstance(entry, dict) else "?"
                loc = [f"site[{loc[1]}] ({ident})", *loc[2:]]
            problems.append(f"{'.'.join(map(str, loc))}: {e['msg']}")
        msg = f"{where}: " + "; ".join(problems)
        raise SiteConfigError(msg) from None


def load_sites(path: Path) -> SitesFile:
    """Read and validate the sites file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"sites file {path} not found (copy sites.example.toml and edit it, or set ZAPFLOW_SITES_FILE)"
        raise SiteConfigError(msg) from None
    except OSError as exc:
        msg = f"sites file {path} cannot be read: {exc.strerror}"
        raise SiteConfigError(msg) from None
    return parse_sites(text, where=str(path))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dump_sites(sites: SitesFile) -> str:
    """`sites` as sites-file TOML (what `zapflow serve` writes for the simulator's installations)."""
    lines = ["# Written by zapflow; the format is documented in sites.example.toml."]
    for site in sites.site:
        data = site.model_dump(mode="json", exclude_none=True)
        policy = {k: v for k, v in data.pop("policy").items() if v is not None}
        lines += ["", "[[site]]", *(f"{k} = {_toml_value(v)}" for k, v in data.items())]
        if policy:
            lines += ["", "[site.policy]", *(f"{k} = {_toml_value(v)}" for k, v in policy.items())]
    return "\n".join(lines) + "\n"
