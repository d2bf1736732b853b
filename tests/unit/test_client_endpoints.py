"""ZaptecClient endpoints against the recorded cloud: paging, mapping, bodies, edge statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from zapflow.domain.models import AvailableCurrentMode, ChargerModel, NetworkType, UserRole
from zapflow.zaptec import ApiCall, InstallationUpdate, ResponseDecodeError, ValidationFailed, ZaptecClient
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec

GO = "de522271-91f5-45b8-916b-07e258ff07d2"


def test_list_installations_fetches_every_page(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec
) -> None:
    """With one item per page, all three pages are requested in order and concatenated."""
    client = make_client(page_size=1)
    installations = client.list_installations()
    assert [i.name for i in installations] == ["Home", "Cabin (APM)", "Office"]
    pages = [r.url.params["PageIndex"] for r in cloud.requests if r.url.path == "/api/installation"]
    assert pages == ["0", "1", "2"]


def test_list_chargers_fetches_every_page(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec
) -> None:
    """Chargers are paged the same way and mapped to products by serial prefix."""
    chargers = make_client(page_size=2).list_chargers()
    assert [c.model for c in chargers] == [ChargerModel.GO, ChargerModel.GO2, ChargerModel.PRO]
    assert cloud.count("GET", "/api/chargers") == 2


def test_a_runaway_page_count_is_an_error(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A `Pages` value that never ends raises instead of looping forever."""
    cloud.fail_next("GET", "/api/chargers", status=200, body={"Pages": 10**9, "Data": []}, times=10**4)
    with pytest.raises(Exception, match="more than 1000 pages"):
        client.list_chargers()


def test_get_installation_maps_settings(client: ZaptecClient) -> None:
    """The recorded InstallationModel maps to typed settings with units."""
    home = client.get_installation(RECORDED_INSTALLATION_ID)
    assert home.max_current_a == 25.0
    assert home.available_current_phases_a is not None
    assert home.available_current_phases_a.as_tuple() == (16.0, 16.0, 16.0)
    assert home.mode is AvailableCurrentMode.DEFAULT
    assert home.network_type is NetworkType.TN_3_PHASE
    assert home.user_roles == UserRole.OWNER
    assert home.can_write
    assert home.is_controllable
    assert home.three_to_one_phase_switch_current_a == 8.0
    assert home.session_max_stop_count == 5


def test_hierarchy_maps_circuits_and_chargers(client: ZaptecClient) -> None:
    """Circuits carry their fuse; chargers their product."""
    hierarchy = client.get_hierarchy(RECORDED_INSTALLATION_ID)
    assert hierarchy is not None
    (circuit,) = hierarchy.circuits
    assert circuit.max_current_a == 25.0
    assert [c.model for c in circuit.chargers] == [ChargerModel.GO, ChargerModel.GO2, ChargerModel.PRO]


def test_hierarchy_204_is_none(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """204 No Content (no access or provisioning) is reported as None, not an error."""
    cloud.hierarchy_204.add(RECORDED_INSTALLATION_ID)
    assert client.get_hierarchy(RECORDED_INSTALLATION_ID) is None


def test_charger_state_keeps_every_observation(client: ZaptecClient) -> None:
    """Every entry is kept raw, Pulse has no value, timestamps become UTC."""
    events = client.get_charger_state(GO)
    by_id = {e.state_id: e for e in events}
    assert len(events) == 27
    assert by_id[-1].value is None
    assert by_id[99999].value == "1"  # unknown ids are kept, not dropped
    assert by_id[513].observed_at == datetime(2026, 11, 24, 14, 59, 37, 577000, tzinfo=UTC)


def test_connection_details_hide_the_password(client: ZaptecClient) -> None:
    """Both connection-details endpoints map the descriptor; the SAS key stays secret."""
    for details in (
        client.get_user_group_connection_details("group-1"),
        client.get_installation_connection_details(RECORDED_INSTALLATION_ID),
    ):
        assert details.port == 5671
        assert details.use_ssl
        assert details.topic == "usergroup_abc"
        assert "c2VjcmV0" not in repr(details)
        assert details.password.get_secret_value().startswith("c2VjcmV0")


def test_constants_are_read(client: ZaptecClient) -> None:
    """`/api/constants` yields the observation table."""
    constants = client.get_constants()
    assert constants.Version == "6.5.8"
    assert constants.Observations["IsOnline"] == -2


def test_update_sends_camelcase_and_lands(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """`availableCurrent` is sent in camelCase and read back from the installation."""
    client.update_installation(
        RECORDED_INSTALLATION_ID, InstallationUpdate(available_current_a=12.0), max_current_a=25.0
    )
    (post,) = [r for r in cloud.requests if r.method == "POST" and r.url.path.endswith("/update")]
    assert json.loads(post.content) == {"availableCurrent": 12.0}
    assert client.get_installation(RECORDED_INSTALLATION_ID).available_current_a == 12.0


def test_update_per_phase_sends_all_three(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """Per-phase writes always carry all three phases (a missing one would reset to default)."""
    client.update_installation(
        RECORDED_INSTALLATION_ID,
        InstallationUpdate(phases_a=(10.0, 0.0, 0.0), three_to_one_phase_switch_current_a=32.0),
        max_current_a=25.0,
    )
    (post,) = [r for r in cloud.requests if r.method == "POST" and r.url.path.endswith("/update")]
    assert json.loads(post.content) == {
        "availableCurrentPhase1": 10.0,
        "availableCurrentPhase2": 0.0,
        "availableCurrentPhase3": 0.0,
        "threeToOnePhaseSwitchCurrent": 32.0,
    }
    after = client.get_installation(RECORDED_INSTALLATION_ID)
    assert after.available_current_phases_a is not None
    assert after.available_current_phases_a.as_tuple() == (10.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("update", "max_current_a", "match"),
    [
        (InstallationUpdate(available_current_a=25.5), 25.0, "outside 0..25"),
        (InstallationUpdate(available_current_a=-1.0), 25.0, "outside 0..25"),
        (InstallationUpdate(available_current_a=float("nan")), 25.0, "outside"),
        (InstallationUpdate(phases_a=(10.0, 26.0, 10.0)), 25.0, "outside 0..25"),
        (InstallationUpdate(phases_a=(10.0, 10.0, -0.1)), 25.0, "outside"),
        (InstallationUpdate(available_current_a=10.0, phases_a=(10.0, 10.0, 10.0)), 25.0, "not both"),
        (InstallationUpdate(), 25.0, "must change something"),
        (InstallationUpdate(available_current_a=10.0), None, "MaxCurrent unknown"),
        (InstallationUpdate(three_to_one_phase_switch_current_a=33.0), 25.0, "not 0"),
        (InstallationUpdate(three_to_one_phase_switch_current_a=-1.0), 25.0, "not 0"),
        (InstallationUpdate(three_to_one_phase_switch_current_a=5.0), 25.0, "6..31"),
        (InstallationUpdate(three_to_one_phase_switch_current_a=31.5), 25.0, "force 1-phase"),
        (InstallationUpdate(three_to_one_phase_switch_current_a=float("nan")), 25.0, "not 0"),
    ],
    ids=[
        "above-max",
        "negative",
        "nan",
        "phase-above-max",
        "phase-negative",
        "both-forms",
        "empty",
        "max-unknown",
        "switch-above-32",
        "switch-negative",
        "switch-below-threshold-range",
        "switch-between-31-and-32",
        "switch-nan",
    ],
)
def test_invalid_updates_are_refused_before_any_request(
    client: ZaptecClient,
    cloud: RecordedZaptec,
    update: InstallationUpdate,
    max_current_a: float | None,
    match: str,
) -> None:
    """Validation happens before login, rate limiting or any request."""
    with pytest.raises(ValidationFailed, match=match):
        client.update_installation(RECORDED_INSTALLATION_ID, update, max_current_a=max_current_a)
    assert cloud.requests == []


@pytest.mark.parametrize(
    "switch_a", [0.0, 6.0, 31.0, 32.0], ids=["force-3p", "min-threshold", "max-threshold", "force-1p"]
)
def test_switch_current_range_is_accepted(switch_a: float) -> None:
    """0 (force 3-phase) through 32 (force 1-phase) are valid switch currents."""
    InstallationUpdate(three_to_one_phase_switch_current_a=switch_a).validate(max_current_a=None)


def test_a_malformed_body_is_a_decode_error(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A body that does not match the wire model raises ResponseDecodeError with a preview."""
    cloud.fail_next("GET", "/api/installation/.*", status=200, body={"Name": "no id"})
    with pytest.raises(ResponseDecodeError) as info:
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert "no id" in info.value.preview


def test_every_call_is_recorded(client: ZaptecClient, calls: list[ApiCall]) -> None:
    """Each logical call reports endpoint template, status and attempts (not the token)."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    (call,) = calls
    assert call.endpoint == "GET /api/installation/{id}"
    assert call.status == 200
    assert call.attempts == 1
    assert call.error is None


def test_user_agent_names_zapflow(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """Zaptec's fair-use policy asks for a descriptive User-Agent, on logins too."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert all(r.headers["User-Agent"].startswith("zapflow/") for r in cloud.requests)
