"""Wire -> domain mapping: typed charger state, products, UTC timestamps, unknown values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zapflow.domain.devices import charger_model
from zapflow.domain.events import ChargerEvent
from zapflow.domain.models import AvailableCurrentMode, ChargerModel, ChargerOperationMode, NetworkType
from zapflow.zaptec import mapping, wire

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CHARGER = "de522271-91f5-45b8-916b-07e258ff07d2"


def _ev(state_id: int, value: str | None, seconds: int = 0) -> ChargerEvent:
    return ChargerEvent(
        charger_id=CHARGER, state_id=state_id, observed_at=T0 + timedelta(seconds=seconds), value=value
    )


@pytest.mark.parametrize(
    ("device_id", "variant", "model"),
    [
        ("ZAP049387", None, ChargerModel.GO),
        ("ZGB000001", None, ChargerModel.GO),
        ("ZAG000001", None, ChargerModel.GO),
        ("GPN012345", None, ChargerModel.GO2),
        ("GPG012345", None, ChargerModel.GO2),
        ("ZAP049387", "Go2", ChargerModel.GO2),
        ("ZPR004711", None, ChargerModel.PRO),
        ("ZCS000001", None, ChargerModel.PRO),
        ("ZPG000001", None, ChargerModel.PRO),
        ("ZCH000001", None, ChargerModel.PRO),
        ("APM000001", None, ChargerModel.SENSE),
        ("zap049387", None, ChargerModel.GO),
        ("XYZ000001", None, ChargerModel.UNKNOWN),
        (None, None, ChargerModel.UNKNOWN),
        ("", None, ChargerModel.UNKNOWN),
    ],
    ids=str,
)
def test_charger_model_from_prefix_and_capabilities(
    device_id: str | None, variant: str | None, model: ChargerModel
) -> None:
    """Serial prefix decides the product; Capabilities' productVariant Go2 overrides it."""
    assert charger_model(device_id, variant) is model


@pytest.mark.parametrize(
    ("capabilities", "variant"),
    [
        ('{"ProductVariant":"Go2","DeviceType":"Go"}', "Go2"),
        ('{"productVariant":"Go2"}', "Go2"),
        ("{}", None),
        ("", None),
        (None, None),
        ("not json", None),
        ('["Go2"]', None),
        ('{"ProductVariant": 2}', None),
    ],
    ids=["pascal", "camel", "empty-object", "empty", "none", "bad-json", "array", "non-string"],
)
def test_product_variant_is_read_tolerantly(capabilities: str | None, variant: str | None) -> None:
    """Capabilities JSON keys are matched case-insensitively; anything odd is just unknown."""
    assert mapping.product_variant(capabilities) == variant


def test_charger_state_types_the_key_observations() -> None:
    """The typed view reads online, mode, phases, currents, power, energy and session."""
    state = mapping.charger_state(
        CHARGER.upper(),
        [
            _ev(-2, "1"),
            _ev(710, "3"),
            _ev(519, "4"),
            _ev(507, "15.9"),
            _ev(508, "16.0", 5),
            _ev(509, "15.8"),
            _ev(513, "10969.104"),
            _ev(553, "7.42"),
            _ev(708, "16.000"),
            _ev(712, "0"),
            _ev(718, "0"),
            _ev(721, "7a3d22a7"),
            _ev(100, '{"ProductVariant":"Go2"}'),
        ],
        device_id="ZAP049387",
    )
    assert state.charger_id == CHARGER
    assert state.model is ChargerModel.GO2
    assert state.is_online is not None
    assert state.is_online.value is True
    assert state.operation_mode is not None
    assert state.operation_mode.value is ChargerOperationMode.CONNECTED_CHARGING
    assert state.currents_a is not None
    assert state.currents_a.value.as_tuple() == (15.9, 16.0, 15.8)
    assert state.currents_a.observed_at == T0  # the oldest of the three phases
    assert state.total_charge_power_w is not None
    assert state.total_charge_power_w.value == pytest.approx(10969.104)
    assert state.session_energy_kwh is not None
    assert state.session_energy_kwh.value == pytest.approx(7.42)
    assert state.voltages_v is None  # not observed
    assert state.invalid_state_ids == ()


def test_newest_observation_wins() -> None:
    """Of several observations of one id the newest counts, whatever the order."""
    state = mapping.charger_state(CHARGER, [_ev(513, "200", 10), _ev(513, "100", 0), _ev(513, "300", 5)])
    assert state.total_charge_power_w is not None
    assert state.total_charge_power_w.value == 200


def test_unparseable_values_are_flagged_not_fatal() -> None:
    """Garbage values are left out of the typed view and listed for reporting."""
    state = mapping.charger_state(
        CHARGER,
        [_ev(-2, "maybe"), _ev(513, "NaN"), _ev(710, "x"), _ev(507, "1"), _ev(508, "?"), _ev(509, "1")],
    )
    assert state.is_online is None
    assert state.total_charge_power_w is None
    assert state.currents_a is None
    assert state.invalid_state_ids == (-2, 508, 513, 710)


def test_unknown_operation_mode_value_is_unknown() -> None:
    """Mode 4 is not defined by Zaptec: it maps to UNKNOWN rather than failing."""
    state = mapping.charger_state(CHARGER, [_ev(710, "4")])
    assert state.operation_mode is not None
    assert state.operation_mode.value is ChargerOperationMode.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-07-28T09:07:19.23", datetime(2023, 7, 28, 9, 7, 19, 230000, tzinfo=UTC)),
        ("2026-05-20T12:41:41.55472Z", datetime(2026, 5, 20, 12, 41, 41, 554720, tzinfo=UTC)),
        ("2026-05-20T14:41:41+02:00", datetime(2026, 5, 20, 12, 41, 41, tzinfo=UTC)),
    ],
    ids=["no-zone", "zulu", "offset"],
)
def test_timestamps_become_utc(raw: str, expected: datetime) -> None:
    """Zone-less timestamps are UTC; others are converted to UTC."""
    item = wire.ChargerStateItem.model_validate({"ChargerId": CHARGER, "StateId": 1, "Timestamp": raw})
    event = mapping.event_from_state_item(item)
    assert event.observed_at == expected
    assert event.observed_at.tzinfo is UTC


def test_installation_with_unknown_enums_is_kept() -> None:
    """An unknown mode stays a number (never DEFAULT); an unknown network type is UNKNOWN."""
    body = wire.InstallationBody.model_validate(
        {"Id": "i", "AvailableCurrentMode": 7, "NetworkType": 42, "AvailableCurrentPhase1": 10}
    )
    settings = mapping.installation_settings(body)
    assert settings.mode == 7
    assert not settings.is_controllable
    assert settings.network_type is NetworkType.UNKNOWN
    assert settings.available_current_phases_a is None  # only one of three phases known
    assert not settings.can_write


def test_installation_without_mode_is_default() -> None:
    """Zaptec omits null fields; a missing mode means Default."""
    settings = mapping.installation_settings(wire.InstallationBody.model_validate({"Id": "i"}))
    assert settings.mode is AvailableCurrentMode.DEFAULT
