"""The broker's hand-written AMQP encodings, SAS checks and the simulator's NBFX publisher."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus._pyamqp.utils import generate_sas_token

from zapflow.simulator.broker import BrokerEventSink, PublishFaults, encode_nbfx
from zapflow.simulator.broker.amqp import (
    bare_message,
    encode_bare,
    split_batch,
)
from zapflow.simulator.broker.sas import connection_string, entity_path, verify_sas_token
from zapflow.zaptec.nbfx import decode_message

SAMPLE = json.loads((Path(__file__).parents[1] / "fixtures" / "servicebus-body-sample.json").read_text())


def test_split_batch_unpacks_batches_and_keeps_single_messages() -> None:
    """Data sections that are messages are a batch; an ordinary body is one message."""
    inner = [encode_bare(b"a"), encode_bare(b"b", message_id="id")]
    batch = b"".join(b"\x00\x53\x75\xa0" + bytes((len(m),)) + m for m in inner)
    assert split_batch(batch) == inner
    header = b"\x00\x53\x70\xc0\x02\x01\x41"
    assert split_batch(header + encode_bare(b"plain")) == [encode_bare(b"plain")]
    assert bare_message(header + encode_bare(b"plain")) == encode_bare(b"plain")


@pytest.mark.parametrize(
    ("encoded", "error"),
    [
        pytest.param(b"\x40", "not a described type", id="not-a-section"),
        pytest.param(b"\x00\xa3\x01x\x40", "unsupported section descriptor", id="symbol-descriptor"),
        pytest.param(b"\x00\x53\x75\x01", "unknown AMQP type code", id="unknown-type"),
    ],
)
def test_unreadable_messages_are_refused(encoded: bytes, error: str) -> None:
    """What the broker cannot parse raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=error):
        split_batch(encoded)


def _token(key: str = "k", name: str = "n", expiry: int | None = None) -> str:
    return generate_sas_token(
        "sb://127.0.0.1:5672/t/Subscriptions/s", name, key, expiry or int(time.time()) + 60
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        pytest.param({}, "", id="valid"),
        pytest.param({"key": "wrong"}, "signature does not match", id="wrong-key"),
        pytest.param({"name": "other"}, "unknown shared access key name", id="unknown-name"),
        pytest.param({"expiry": 1}, "expired", id="expired"),
    ],
)
def test_sas_tokens_are_checked(kwargs: dict[str, Any], reason: str) -> None:
    """Only tokens signed with the configured key and unexpired pass."""
    audience, why = verify_sas_token(_token(**kwargs), keys={"n": "k"}, now_s=time.time())
    assert (reason in why) if reason else (why == ""), why
    assert (audience == "t/subscriptions/s") == (not reason)


def test_a_token_of_another_scheme_is_refused() -> None:
    """Only SharedAccessSignature tokens are read."""
    assert verify_sas_token("Bearer abc", keys={"n": "k"}, now_s=0)[1] == "not a SharedAccessSignature token"


def test_sas_token_without_a_numeric_expiry_is_refused() -> None:
    """A signed but non-numeric expiry is refused."""
    token = _token().replace("se=", "se=x")
    assert verify_sas_token(token, keys={"n": "k"}, now_s=0)[1]


def test_connection_string_and_entity_paths() -> None:
    """The emulator connection string; addresses normalised with scheme, port and case dropped."""
    assert connection_string("h", 1, "n", "k").endswith(";UseDevelopmentEmulator=true")
    assert entity_path("amqps://127.0.0.1:5672/Topic/Subscriptions/Sub") == "topic/subscriptions/sub"
    assert entity_path("amqps://host") == ""
    assert entity_path(None) == ""


def test_nbfx_encoder_matches_the_recorded_zaptec_body() -> None:
    """The simulator's encoder writes byte for byte what Zaptec sent, and the consumer decodes it."""
    sample = SAMPLE["samples"][0]
    assert encode_nbfx(sample["expected"]) == bytes.fromhex(sample["hex"])
    for size in (300, 70_000):
        payload = {"ValueAsString": "x" * size}
        assert decode_message(encode_nbfx(payload)) == payload


class _Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.drops = 0

    def publish(self, topic: str, bodies: list[bytes], *, message_ids: list[str | None]) -> list[int]:
        assert topic == "t"
        assert len(message_ids) == len(bodies)
        self.bodies.extend(bodies)
        return list(range(len(bodies)))

    def drop_connections(self) -> int:
        self.drops += 1
        return 1


def test_sink_faults_duplicate_reorder_corrupt_and_drop() -> None:
    """Faults add duplicates, swap neighbours, add malformed bodies and drop connections."""
    recorder = _Recorder()
    sink = BrokerEventSink(
        "t",
        faults=PublishFaults(
            duplicate_every=2, out_of_order_every=3, malformed_every=4, drop_connections_every=5
        ),
    )
    sink.publish({"n": 0})  # kept until a broker is bound
    sink.bind(recorder)
    for n in range(1, 6):
        sink.publish({"n": n})
    decoded: list[Any] = []
    for body in recorder.bodies:
        try:
            decoded.append(decode_message(body)["n"])
        except Exception:  # noqa: BLE001 - the malformed body
            decoded.append("bad")
    numbers = [d for d in decoded if d != "bad"]
    assert sorted(set(numbers)) == [0, 1, 2, 3, 4, 5]
    assert len(numbers) > len(set(numbers))  # duplicates
    assert numbers != sorted(numbers)  # out of order
    assert decoded.count("bad") == 1
    assert recorder.drops == 1
