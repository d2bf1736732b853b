"""Tests for the Service Bus body codec `zapflow.zaptec.nbfx`."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from zapflow.zaptec import nbfx
from zapflow.zaptec.errors import MessageDecodeError
from zapflow.zaptec.nbfx import decode_message, encode_message

pytestmark = pytest.mark.unit

_FIXTURE = Path(__file__).parent.parent / "fixtures" / "servicebus-body-sample.json"
_SAMPLE = json.loads(_FIXTURE.read_text(encoding="utf-8"))["samples"][0]
SAMPLE_BODY = bytes.fromhex(_SAMPLE["hex"])
SAMPLE_EXPECTED: dict[str, Any] = _SAMPLE["expected"]

# Spelled out here rather than imported, so a typo in the module cannot hide itself.
NAMESPACE = b"http://schemas.microsoft.com/2003/10/Serialization/"
CHARS8, CHARS16, CHARS32 = 0x98, 0x9A, 0x9C
BOM = b"\xef\xbb\xbf"


def header(name: bytes = b"string", namespace: bytes = NAMESPACE) -> bytes:
    """Build ShortElement + ShortXmlnsAttribute with one-byte MB32 lengths."""
    return b"\x40" + bytes([len(name)]) + name + b"\x08" + bytes([len(namespace)]) + namespace


HEADER = header()


def text_record(record: int, text: bytes) -> bytes:
    """Build a Chars*Text record (and its EndElement unless it is a WithEndElement one)."""
    length_format = {CHARS8: "<B", CHARS16: "<H", CHARS32: "<i"}[record & 0xFE]
    end = b"" if record & 1 else b"\x01"
    return bytes([record]) + struct.pack(length_format, len(text)) + text + end


def json_text(size: int) -> bytes:
    """Return a compact JSON object of exactly `size` UTF-8 bytes."""
    base = b'{"DeviceId":"ZAP000000","ValueAsString":""}'
    return base[:-2] + b"7" * (size - len(base)) + base[-2:]


def test_decodes_recorded_sample() -> None:
    """The body recorded from Zaptec decodes to its expected dict."""
    assert decode_message(SAMPLE_BODY) == SAMPLE_EXPECTED


def test_encodes_recorded_sample_byte_for_byte() -> None:
    """Encoding the recorded payload reproduces Zaptec's exact bytes."""
    assert encode_message(SAMPLE_EXPECTED) == SAMPLE_BODY


@pytest.mark.parametrize(
    ("record", "size"),
    [
        (CHARS8, 100),
        (CHARS16, 1000),
        (CHARS32, 70000),
        (CHARS8 + 1, 100),
        (CHARS16 + 1, 1000),
        (CHARS32 + 1, 70000),
        (CHARS16, 100),
        (CHARS32, 100),
    ],
    ids=[
        "chars8-100B",
        "chars16-1000B",
        "chars32-70000B",
        "chars8-with-end-element-100B",
        "chars16-with-end-element-1000B",
        "chars32-with-end-element-70000B",
        "chars16-holding-a-short-text",
        "chars32-holding-a-short-text",
    ],
)
def test_decodes_hand_built_text_records(record: int, size: int) -> None:
    """Each text record type decodes, whatever the size of the text it carries."""
    text = json_text(size)
    assert decode_message(HEADER + text_record(record, text)) == json.loads(text)


@pytest.mark.parametrize(
    "body",
    [
        # 0x86 0x00 is a two-byte MB32 for 6: legal, though .NET writes the short form.
        b"\x40\x86\x00string\x08" + bytes([len(NAMESPACE)]) + NAMESPACE,
        b"\x40\x06string\x08" + bytes([0x80 | len(NAMESPACE), 0x80, 0x00]) + NAMESPACE,
    ],
    ids=["two-byte-name-length", "three-byte-namespace-length"],
)
def test_decodes_multi_byte_string_lengths(body: bytes) -> None:
    """Element name and namespace lengths are read as MB32 varints."""
    text = json_text(100)
    assert decode_message(body + text_record(CHARS8, text)) == json.loads(text)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (17, b"\x11"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16384, b"\x80\x80\x01"),
        (0x7FFF_FFFF, b"\xff\xff\xff\xff\x07"),
    ],
    ids=["0", "17", "127", "128", "300", "16384", "int31-max"],
)
def test_mb32_encoding(value: int, encoded: bytes) -> None:
    """MB32 puts 7 bits per byte, low group first, high bit on all but the last byte."""
    assert nbfx._encode_mb32(value) == encoded


def test_long_wrong_element_name_is_read_and_shortened() -> None:
    """A 300-byte name (two-byte MB32 length) is read whole and capped in the message."""
    body = b"\x40\xac\x02" + b"n" * 300 + b"\x08\x00\x98\x02{}\x01"
    with pytest.raises(MessageDecodeError, match=r"'n{40}'\.\.\. \(300 chars\)") as caught:
        decode_message(body)
    assert caught.value.offset == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"StateId":710,"ValueAsString":"3"}',
        BOM + b'{"StateId":710,"ValueAsString":"3"}',
        b' \t\r\n{"StateId":710,"ValueAsString":"3"}\n',
        BOM + b'\n {"StateId":710,"ValueAsString":"3"}',
    ],
    ids=["plain", "bom", "surrounding-whitespace", "bom-and-whitespace"],
)
def test_decodes_plain_json(body: bytes) -> None:
    """A body of plain JSON (optionally with BOM and whitespace) decodes too."""
    assert decode_message(body) == {"StateId": 710, "ValueAsString": "3"}


def test_decodes_non_ascii_text() -> None:
    """Non-ASCII text round-trips as UTF-8 in both body shapes."""
    payload = {"ChargePointName": "Garasje Ø, 车库"}
    plain = json.dumps(payload, ensure_ascii=False).encode()
    assert decode_message(encode_message(payload)) == payload
    assert decode_message(plain) == payload


@pytest.mark.parametrize(
    ("size", "record"),
    [
        (100, CHARS8),
        (255, CHARS8),
        (256, CHARS16),
        (1000, CHARS16),
        (65535, CHARS16),
        (65536, CHARS32),
        (70000, CHARS32),
    ],
    ids=[
        "100B-chars8",
        "255B-chars8",
        "256B-chars16",
        "1000B-chars16",
        "65535B-chars16",
        "65536B-chars32",
        "70000B-chars32",
    ],
)
def test_round_trip_picks_record_by_size(size: int, record: int) -> None:
    """encode_message picks the smallest text record; decode_message reverses it."""
    payload = json.loads(json_text(size))
    body = encode_message(payload)
    assert body == HEADER + text_record(record, json_text(size))
    assert decode_message(body) == payload


def test_encode_measures_utf8_bytes_not_characters() -> None:
    """200 two-byte characters need Chars16Text although they are under 255 chars."""
    payload = {"x": "ø" * 200}
    body = encode_message(payload)
    assert body[len(HEADER)] == CHARS16
    assert decode_message(body) == payload


def test_encode_refuses_nan() -> None:
    """NaN is not JSON, so the encoder refuses to publish it."""
    with pytest.raises(ValueError, match="JSON"):
        encode_message({"Value": float("nan")})


NBFX_TEXT_AT = len(HEADER) + 2  # after a Chars8Text record type and its length byte

# (body, start of the expected message, expected offset)
MALFORMED: dict[str, tuple[bytes, str, int]] = {
    "empty": (b"", "empty message body", 0),
    "wrong-first-record": (b"\x41" + SAMPLE_BODY[1:], "unsupported record 0x41", 0),
    "binary-first-byte": (b"\x00\x01\x02", "unsupported record 0x00", 0),
    "wrong-element-name": (
        header(name=b"strinG") + text_record(CHARS8, b"{}"),
        "element name at offset 1 is 'strinG'",
        1,
    ),
    "element-name-not-utf8": (
        header(name=b"\xff") + text_record(CHARS8, b"{}"),
        "invalid UTF-8 in element name",
        2,
    ),
    "xmlns-with-prefix": (
        b"\x40\x06string\x09\x01a" + NAMESPACE,
        "unsupported record 0x09 at offset 8; expected 0x08",
        8,
    ),
    "wrong-namespace": (
        header(namespace=b"urn:other") + text_record(CHARS8, b"{}"),
        "xmlns at offset 9 is 'urn:other'",
        9,
    ),
    "mb32-longer-than-5-bytes": (b"\x40\x80\x80\x80\x80\x80\x00", "longer than 5", 1),
    "mb32-over-int31": (b"\x40\xff\xff\xff\xff\x0f", "exceeds 2**31 - 1", 1),
    "unknown-text-record-empty-text": (
        HEADER + b"\xa8\x01",
        "unsupported text record 0xA8",
        len(HEADER),
    ),
    "unknown-text-record-unicode-chars8": (
        HEADER + b"\xb6\x04{\x00}\x00\x01",
        "unsupported text record 0xB6",
        len(HEADER),
    ),
    "negative-chars32-length": (
        HEADER + b"\x9c" + struct.pack("<i", -1) + b"{}\x01",
        "Chars32Text length at offset 62 is negative",
        len(HEADER) + 1,
    ),
    "chars8-length-beyond-body": (
        HEADER + b"\x98\xc8" + b"{}" + b"\x01",
        "truncated body: Chars8Text text",
        NBFX_TEXT_AT,
    ),
    "no-end-element": (
        HEADER + b"\x98\x02{}\x02",
        "unsupported record 0x02",
        NBFX_TEXT_AT + 2,
    ),
    "trailing-garbage": (
        SAMPLE_BODY + b"\x00",
        "1 trailing byte(s) after the end element",
        len(SAMPLE_BODY),
    ),
    "end-element-after-with-end-element": (
        HEADER + text_record(CHARS8 + 1, b"{}") + b"\x01",
        "1 trailing byte(s)",
        NBFX_TEXT_AT + 2,
    ),
    "invalid-utf8-in-nbfx-text": (
        HEADER + text_record(CHARS8, b'{"a":"\xff"}'),
        "invalid UTF-8 in JSON text",
        NBFX_TEXT_AT + 6,
    ),
    "bad-json-in-nbfx": (
        HEADER + text_record(CHARS8, b'{"a":}'),
        "JSON text does not parse",
        NBFX_TEXT_AT + 5,
    ),
    "json-array-in-nbfx": (
        HEADER + text_record(CHARS8, b"[1]"),
        "JSON text at offset 63 is an array",
        NBFX_TEXT_AT,
    ),
    "bad-plain-json": (b'{"a":1', "plain JSON body does not parse", 6),
    # 'ø' is two bytes, so a character offset would say 5 here.
    "bad-plain-json-offset-in-bytes": (
        '{"ø":}'.encode(),
        "plain JSON body does not parse at offset 6",
        6,
    ),
    "plain-json-array": (b"[1, 2]", "plain JSON body at offset 0 is an array", 0),
    "plain-json-string": (b'"text"', "is a string", 0),
    "plain-json-number": (BOM + b"42", "plain JSON body at offset 3 is a number", 3),
    "plain-json-null": (b"null", "is null", 0),
    "bom-only": (BOM + b"  ", "body holds no JSON", 5),
    "invalid-utf8-plain": (b'{"a":"\xff"}', "invalid UTF-8 in plain JSON body", 6),
    "nan-plain": (b'{"a":NaN}', "NaN is not a JSON number", 0),
    "nested-too-deeply": (b"[" * 100_000, "nests too deeply", 0),
}


@pytest.mark.parametrize(("body", "message", "offset"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_rejects_malformed_body(body: bytes, message: str, offset: int) -> None:
    """Each malformed body raises MessageDecodeError naming the problem and offset."""
    with pytest.raises(MessageDecodeError, match=re.escape(message)) as caught:
        decode_message(body)
    assert caught.value.raw == body
    assert caught.value.offset == offset
    assert not caught.value.retryable


@pytest.mark.parametrize("length", range(len(SAMPLE_BODY)), ids=lambda n: f"first-{n}-bytes")
def test_rejects_every_truncation_of_the_sample(length: int) -> None:
    """Every proper prefix of the recorded body is rejected, never half-decoded."""
    prefix = SAMPLE_BODY[:length]
    with pytest.raises(MessageDecodeError) as caught:
        decode_message(prefix)
    assert caught.value.raw == prefix
    assert caught.value.offset is not None
    assert 0 <= caught.value.offset <= length


@pytest.mark.parametrize(
    ("record", "size"),
    [(CHARS16, 1000), (CHARS32, 70000), (CHARS32 + 1, 70000)],
    ids=["chars16", "chars32", "chars32-with-end-element"],
)
def test_rejects_large_text_cut_short(record: int, size: int) -> None:
    """A large text record whose length says more than the body holds is truncated."""
    body = (HEADER + text_record(record, json_text(size)))[: len(HEADER) + size // 2]
    with pytest.raises(MessageDecodeError, match=r"^truncated body") as caught:
        decode_message(body)
    assert caught.value.raw == body
