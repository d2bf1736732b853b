"""Decode and encode the body of a Zaptec Service Bus message.

Zaptec publishes each observation as a .NET DataContract-serialised `string`, so the
body is .NET Binary XML (MC-NBFX) for `<string xmlns="...">{json}</string>`, with the
namespace http://schemas.microsoft.com/2003/10/Serialization/:

    0x40 MB32 "string"         ShortElement (no prefix)
    0x08 MB32 namespace        ShortXmlnsAttribute (the default namespace)
    0x98 u8 / 0x9A u16 / 0x9C i32 (little-endian) length, then UTF-8 JSON text
                               Chars8Text / Chars16Text / Chars32Text
    0x01                       EndElement

A text record with the low bit set (0x99, 0x9B, 0x9D) is the `...WithEndElement`
variant and closes the element itself, so no 0x01 follows. MB32 (the spec's
MultiByteInt31) is a 1-5 byte varint: 7 bits per byte, least significant group first,
high bit set on every byte but the last.

Some publishers put plain JSON on the bus instead, so a body whose first byte is not
0x40 is read as UTF-8 JSON (a leading BOM and whitespace are allowed). Only these two
shapes are accepted; any other body raises `MessageDecodeError` naming the problem and
its byte offset.
"""

from __future__ import annotations

import json
from typing import Any, Final

from zapflow.zaptec.errors import MessageDecodeError

__all__ = ["SERIALIZATION_NAMESPACE", "decode_message", "encode_message"]

SERIALIZATION_NAMESPACE: Final = "http://schemas.microsoft.com/2003/10/Serialization/"

_SHORT_ELEMENT: Final = 0x40
_SHORT_XMLNS_ATTRIBUTE: Final = 0x08
_END_ELEMENT: Final = 0x01
_ELEMENT_NAME: Final = "string"
# Text record type -> (name, width of its length field, whether that length is signed).
# Each type + 1 is the `...WithEndElement` variant of the same record. The spec makes
# Chars32Text's length a signed Int32 and the shorter ones unsigned.
_TEXT_RECORDS: Final[dict[int, tuple[str, int, bool]]] = {
    0x98: ("Chars8Text", 1, False),
    0x9A: ("Chars16Text", 2, False),
    0x9C: ("Chars32Text", 4, True),
}
_CHARS8_TEXT: Final = 0x98
_CHARS16_TEXT: Final = 0x9A
_CHARS32_TEXT: Final = 0x9C
_MAX_CHARS8: Final = 0xFF
_MAX_CHARS16: Final = 0xFFFF
_MB32_MAX_BYTES: Final = 5
_MB32_MAX: Final = 0x7FFF_FFFF
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_JSON_WHITESPACE: Final = b" \t\r\n"
# The bytes a JSON value can start with; any other first byte is taken for a record.
_JSON_VALUE_STARTS: Final = frozenset(b'{["-0123456789tfn')
_NAME_PREVIEW_CHARS: Final = 40
_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def decode_message(body: bytes) -> dict[str, Any]:
    """Return the JSON object carried by a Service Bus body (NBFX or plain JSON)."""
    body = bytes(body)  # a bytearray or memoryview would make `raw` mutable
    if not body:
        msg = "empty message body"
        raise MessageDecodeError(msg, raw=body, offset=0)
    if body[0] == _SHORT_ELEMENT:
        return _decode_nbfx(body)
    return _decode_plain_json(body)


def encode_message(payload: dict[str, Any]) -> bytes:
    """Wrap `payload` as compact JSON in NBFX exactly as Zaptec sends it.

    The text record is Chars8Text, Chars16Text or Chars32Text by the UTF-8 byte length
    of the JSON. NaN and infinities raise `ValueError`: they are not JSON.
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    size = len(text)
    if size <= _MAX_CHARS8:
        header = bytes((_CHARS8_TEXT, size))
    elif size <= _MAX_CHARS16:
        header = bytes((_CHARS16_TEXT,)) + size.to_bytes(2, "little")
    else:
        header = bytes((_CHARS32_TEXT,)) + size.to_bytes(4, "little", signed=True)
    return _PREAMBLE + header + text + bytes((_END_ELEMENT,))


def _encode_mb32(value: int) -> bytes:
    """Encode a non-negative int as an NBFX MultiByteInt31."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _encode_string(text: str) -> bytes:
    """Encode an NBFX String: MB32 byte length, then UTF-8."""
    data = text.encode("utf-8")
    return _encode_mb32(len(data)) + data


# Everything before the text record never changes, so build it once.
_PREAMBLE: Final = (
    bytes((_SHORT_ELEMENT,))
    + _encode_string(_ELEMENT_NAME)
    + bytes((_SHORT_XMLNS_ATTRIBUTE,))
    + _encode_string(SERIALIZATION_NAMESPACE)
)


class _Reader:
    """A cursor over a body whose every short read raises `MessageDecodeError`."""

    __slots__ = ("body", "pos")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def error(self, message: str, offset: int) -> MessageDecodeError:
        """Build the decode error for this body."""
        return MessageDecodeError(message, raw=self.body, offset=offset)

    def take(self, size: int, what: str) -> bytes:
        """Consume and return `size` bytes."""
        start, end = self.pos, self.pos + size
        if end > len(self.body):
            left = len(self.body) - start
            msg = f"truncated body: {what} at offset {start} needs {size} byte(s), only {left} present"
            raise self.error(msg, start)
        self.pos = end
        return self.body[start:end]

    def byte(self, what: str) -> int:
        """Consume one byte."""
        return self.take(1, what)[0]

    def record(self, expected: int, name: str) -> None:
        """Consume one record type byte that must be `expected`."""
        start = self.pos
        found = self.byte(f"{name} record")
        if found != expected:
            msg = f"unsupported record 0x{found:02X} at offset {start}; expected 0x{expected:02X} {name}"
            raise self.error(msg, start)

    def mb32(self, what: str) -> int:
        """Consume an NBFX MultiByteInt31."""
        start = self.pos
        value = 0
        for index in range(_MB32_MAX_BYTES):
            byte = self.byte(what)
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                break
        else:
            msg = f"{what} at offset {start} is longer than {_MB32_MAX_BYTES} bytes"
            raise self.error(msg, start)
        if value > _MB32_MAX:
            msg = f"{what} at offset {start} exceeds 2**31 - 1"
            raise self.error(msg, start)
        return value

    def string(self, what: str) -> str:
        """Consume an NBFX String (MB32 byte length, then UTF-8)."""
        length = self.mb32(f"{what} length")
        start = self.pos
        data = self.take(length, what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            msg = f"invalid UTF-8 in {what} at offset {start + exc.start}"
            raise self.error(msg, start + exc.start) from exc


def _decode_nbfx(body: bytes) -> dict[str, Any]:
    """Decode `<string xmlns=...>{json}</string>` in MC-NBFX."""
    reader = _Reader(body)
    reader.record(_SHORT_ELEMENT, "ShortElement")
    start = reader.pos
    name = reader.string("element name")
    if name != _ELEMENT_NAME:
        msg = f"element name at offset {start} is {_preview(name)}, expected 'string'"
        raise reader.error(msg, start)
    reader.record(_SHORT_XMLNS_ATTRIBUTE, "ShortXmlnsAttribute")
    start = reader.pos
    namespace = reader.string("xmlns namespace")
    if namespace != SERIALIZATION_NAMESPACE:
        msg = f"xmlns at offset {start} is {_preview(namespace)}, expected {SERIALIZATION_NAMESPACE!r}"
        raise reader.error(msg, start)
    text, text_start = _read_text_record(reader)
    end = reader.pos
    if end < len(body):
        msg = f"{len(body) - end} trailing byte(s) after the end element at offset {end}"
        raise reader.error(msg, end)
    return _parse_object(body, text, text_start, "JSON text")


def _read_text_record(reader: _Reader) -> tuple[bytes, int]:
    """Consume the text record and any EndElement; return the text and its offset."""
    start = reader.pos
    record = reader.byte("text record")
    # Clearing the low bit maps each `...WithEndElement` variant onto its base record.
    known = _TEXT_RECORDS.get(record & 0xFE)
    if known is None:
        msg = (
            f"unsupported text record 0x{record:02X} at offset {start}; expected "
            "Chars8Text, Chars16Text or Chars32Text (0x98-0x9D)"
        )
        raise reader.error(msg, start)
    name, width, signed = known
    length_start = reader.pos
    length = int.from_bytes(reader.take(width, f"{name} length"), "little", signed=signed)
    if length < 0:
        msg = f"{name} length at offset {length_start} is negative ({length})"
        raise reader.error(msg, length_start)
    text_start = reader.pos
    text = reader.take(length, f"{name} text")
    if not record & 1:
        reader.record(_END_ELEMENT, "EndElement")
    return text, text_start


def _decode_plain_json(body: bytes) -> dict[str, Any]:
    """Decode a body of plain UTF-8 JSON, allowing a leading BOM and whitespace."""
    start = len(_UTF8_BOM) if body.startswith(_UTF8_BOM) else 0
    first = start
    while first < len(body) and body[first] in _JSON_WHITESPACE:
        first += 1
    if first == len(body):
        msg = f"body holds no JSON: only a BOM and/or whitespace up to offset {first}"
        raise MessageDecodeError(msg, raw=body, offset=first)
    if body[first] not in _JSON_VALUE_STARTS:
        # Not JSON: most likely an NBFX record (0x41 Element, ...) this decoder refuses.
        msg = (
            f"unsupported record 0x{body[first]:02X} at offset {first}; expected "
            "0x40 ShortElement (NBFX) or a JSON object"
        )
        raise MessageDecodeError(msg, raw=body, offset=first)
    return _parse_object(body, body[start:], start, "plain JSON body")


def _parse_object(body: bytes, data: bytes, start: int, what: str) -> dict[str, Any]:
    """Parse `data`, found at byte `start` of `body`, as a UTF-8 JSON object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        msg = f"invalid UTF-8 in {what} at offset {offset}"
        raise MessageDecodeError(msg, raw=body, offset=offset) from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # `pos` counts characters; report bytes so the offset indexes `raw`.
        offset = start + len(text[: exc.pos].encode("utf-8"))
        msg = f"{what} does not parse at offset {offset}: {exc.msg}"
        raise MessageDecodeError(msg, raw=body, offset=offset) from exc
    except ValueError as exc:
        # NaN/Infinity (refused below) or an int longer than Python's digit limit.
        msg = f"{what} at offset {start} holds a value that is not decodable: {exc}"
        raise MessageDecodeError(msg, raw=body, offset=start) from exc
    except RecursionError as exc:
        msg = f"{what} at offset {start} nests too deeply to decode"
        raise MessageDecodeError(msg, raw=body, offset=start) from exc
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        msg = f"{what} at offset {start} is {kind}, expected an object"
        raise MessageDecodeError(msg, raw=body, offset=start)
    return value


def _reject_constant(name: str) -> float:
    """Refuse NaN and Infinity: Python's json accepts them, JSON does not."""
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _preview(text: str) -> str:
    """Quote untrusted text for an error message, capped in length."""
    if len(text) > _NAME_PREVIEW_CHARS:
        return f"{text[:_NAME_PREVIEW_CHARS]!r}... ({len(text)} chars)"
    return repr(text)
