"""The sites file: the example validates, mistakes are named by entry and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from zapflow.domain.policy import PolicyMode
from zapflow.domain.units import Earthing
from zapflow.sites import SiteConfigError, load_sites, parse_sites

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_example_validates_and_starts_in_dry_run() -> None:
    """sites.example.toml is valid; writes are off until enabled."""
    sites = load_sites(ROOT / "sites.example.toml")
    site = sites.site[0]
    assert site.writes_enabled is False
    policy = site.policy_settings(mode=PolicyMode.SOLAR, deadband_a=2.0)
    assert policy.mode is PolicyMode.SOLAR
    assert policy.fuse_a == 25
    assert policy.deadband_a == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[site]]\ninstallation_id = 'a'\nlatitude = 1\nlongitude = 1\nfuse_a = 25\nfuse = 3\n",
            "fuse: Extra inputs",
        ),
        (
            "[[site]]\ninstallation_id = 'a'\nlatitude = 91\nlongitude = 1\nfuse_a = 25\n",
            "site[0] (a).latitude",
        ),
        (
            "[[site]]\ninstallation_id = 'a'\nlatitude = 1\nlongitude = 1\nfuse_a = 25\nmode = 'solar'\n",
            "pv_kwp",
        ),
        ("[[site\n", "not valid TOML"),
        ("", "site: Field required"),
        ("[[site]]\ninstallation_id='a'\nlatitude=1\nlongitude=1\nfuse_a=25\n" * 2, "more than once: a"),
    ],
)
def test_mistakes_are_named(text: str, message: str) -> None:
    """Each mistake gives an error naming what is wrong and where."""
    with pytest.raises(
        SiteConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        parse_sites(text)


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    """No sites file: the message names the example to copy."""
    with pytest.raises(SiteConfigError, match=r"sites\.example\.toml"):
        load_sites(tmp_path / "sites.toml")


def test_network_type_overrides_the_installations_own_and_auto_defers_to_it() -> None:
    """TN/IT from the sites file reaches the policy; "auto" leaves it to Zaptec's NetworkType."""
    base = "[[site]]\ninstallation_id = 'a'\nlatitude = 1\nlongitude = 1\nfuse_a = 25\n"
    assert parse_sites(base).site[0].policy_settings().earthing is None
    it = parse_sites(base + "network_type = 'IT'\n").site[0].policy_settings()
    assert it.earthing is Earthing.IT
    with pytest.raises(SiteConfigError, match="network_type"):
        parse_sites(base + "network_type = 'TT'\n")
