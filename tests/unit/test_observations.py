"""Tests for the generated observation ids `zapflow.zaptec.observations`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from zapflow.zaptec.observations import (
    CONSTANTS_VERSION,
    KEY_OBSERVATIONS,
    Observation,
)

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "gen_observations.py"
CONSTANTS_PATH = ROOT / "zapflow" / "data" / "zaptec-constants.json"
GENERATED = ROOT / "zapflow" / "zaptec" / "observations.py"
CONSTANTS: dict[str, Any] = json.loads(CONSTANTS_PATH.read_text(encoding="utf-8"))

KEY_IDS = {
    "IsOnline": -2,
    "Capabilities": 100,
    "VoltagePhase1": 501,
    "VoltagePhase2": 502,
    "VoltagePhase3": 503,
    "CurrentPhase1": 507,
    "CurrentPhase2": 508,
    "CurrentPhase3": 509,
    "TotalChargePower": 513,
    "SetPhases": 519,
    "TotalChargePowerSession": 553,
    "ChargeCurrentSet": 708,
    "ChargerOperationMode": 710,
    "IsStandAlone": 712,
    "FinalStopActive": 718,
    "SessionIdentifier": 721,
}


def load_module(path: Path, name: str) -> ModuleType:
    """Import a Python file that is not on the import path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    """The generator script, imported as a module."""
    return load_module(GENERATOR, "gen_observations")


def minimal_constants(**extra_observations: int) -> dict[str, Any]:
    """Build a tiny constants dump holding the key observations plus `extra`."""
    observations = dict(KEY_IDS) | {"Pulse": -1} | extra_observations
    return {
        "Version": "0.0.1",
        "Observations": observations,
        "Schema": {
            "Smart": {"ObservationIds": {}},
            "Apollo": {"ObservationIds": {"WaitingReasons": -1000, "Pulse2": -1}},
        },
    }


def test_generated_module_is_up_to_date(generator: ModuleType) -> None:
    """The committed module equals what the generator makes of the packaged constants."""
    assert generator.render(CONSTANTS) == GENERATED.read_text(encoding="utf-8")


def test_packaged_constants_match_the_recorded_version() -> None:
    """The module says which constants version it came from: the packaged 6.5.8."""
    assert CONSTANTS_VERSION == CONSTANTS["Version"] == "6.5.8"


def test_global_map_has_155_entries() -> None:
    """The packaged dump is the full global Observations map."""
    assert len(CONSTANTS["Observations"]) == 155


@pytest.mark.parametrize(
    ("name", "value"),
    list(CONSTANTS["Observations"].items()),
    ids=list(CONSTANTS["Observations"]),
)
def test_every_global_observation_is_a_member(name: str, value: int) -> None:
    """Each global Observations entry is a member under Zaptec's name and id."""
    assert Observation[name] == value


@pytest.mark.parametrize("schema", ["Smart", "Apollo"], ids=["smart", "apollo"])
def test_every_charger_schema_id_is_a_member(schema: str) -> None:
    """Ids only a charger schema defines (Apollo's WaitingReasons, ...) are members."""
    values = {member.value for member in Observation}
    schema_ids = CONSTANTS["Schema"][schema]["ObservationIds"]
    assert set(schema_ids.values()) <= values


def test_members_are_sorted_by_id() -> None:
    """Members are listed by id, so the source reads like Zaptec's id table."""
    values = [member.value for member in Observation]
    assert values == sorted(values)


@pytest.mark.parametrize(("name", "value"), list(KEY_IDS.items()), ids=list(KEY_IDS))
def test_key_observation_ids(name: str, value: int) -> None:
    """Each id the load balancer reads has the value Zaptec documents."""
    assert Observation[name] == value
    assert value in KEY_OBSERVATIONS


def test_key_observations_are_exactly_the_balancer_ids() -> None:
    """KEY_OBSERVATIONS holds the sixteen balancer ids and nothing else."""
    assert sorted(KEY_OBSERVATIONS) == sorted(KEY_IDS.values())
    assert all(isinstance(key, Observation) for key in KEY_OBSERVATIONS)


def test_render_sanitises_names(generator: ModuleType, tmp_path: Path) -> None:
    """Names that are no Python identifier get a safe name and a note."""
    source = generator.render(minimal_constants(**{"5G Mode": 900, "class": 901, "Is-Locked": 902}))
    path = tmp_path / "observations_sample.py"
    path.write_text(source, encoding="utf-8")
    module = load_module(path, "observations_sample")
    members = module.Observation.__members__
    assert members["Id5G_Mode"] == 900
    assert members["class_"] == 901
    assert members["Is_Locked"] == 902
    assert members["WaitingReasons"] == -1000
    assert "Id5G_Mode = 900  # Zaptec spells it '5G Mode'" in source
    assert "WaitingReasons = -1000  # Apollo only" in source
    assert "Pulse = -1  # Apollo calls it Pulse2" in source


def test_render_refuses_missing_key_observation(generator: ModuleType) -> None:
    """A dump without one of the balancer's ids fails loudly instead of dropping it."""
    constants = minimal_constants()
    del constants["Observations"]["SetPhases"]
    with pytest.raises(ValueError, match="SetPhases"):
        generator.render(constants)


def test_render_refuses_non_integer_id(generator: ModuleType) -> None:
    """A dump whose ids are not integers is refused."""
    constants = minimal_constants()
    constants["Observations"]["IsOnline"] = "-2"
    with pytest.raises(TypeError, match=r"Observations\.IsOnline"):
        generator.render(constants)


def test_main_check_passes_on_committed_module(generator: ModuleType) -> None:
    """`--check` exits 0 while the committed module is up to date."""
    assert generator.main(["--check"]) == 0


def test_main_writes_and_checks_output(generator: ModuleType, tmp_path: Path) -> None:
    """Without `--check` the module is written; `--check` then passes until edited."""
    output = tmp_path / "observations.py"
    args = [str(CONSTANTS_PATH), "--output", str(output)]
    assert generator.main(args) == 0
    assert output.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8")
    assert generator.main([*args, "--check"]) == 0
    output.write_text("# edited by hand\n", encoding="utf-8")
    assert generator.main([*args, "--check"]) == 1
