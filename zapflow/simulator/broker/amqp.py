"""The few AMQP 1.0 encodings the broker writes by hand, and a section splitter.

Every delivery carries a header with an explicit `delivery-count` (proton's encoder drops a 0)
and three message annotations; building those bytes with `struct` instead of a proton `Message`
keeps per-delivery cost in the microseconds. The stored message is the *bare* message
(properties, application properties, body, footer): the broker owns header and annotations.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from proton import Data, Described, ulong

__all__ = [
    "bare_message",
    "delivery_prefix",
    "encode_bare",
    "split_batch",
    "with_application_properties",
]

_HEADER: Final = 0x70
_DELIVERY_ANNOTATIONS: Final = 0x71
_MESSAGE_ANNOTATIONS: Final = 0x72
_PROPERTIES: Final = 0x73
_APPLICATION_PROPERTIES: Final = 0x74
_DATA: Final = 0x75
_SECTION_MIN: Final = _HEADER
_SECTION_MAX: Final = 0x78
_MAX8: Final = 0xFF

_LONG: Final = struct.Struct(">q")
_UINT: Final = struct.Struct(">I")
# A header list of five fields: durable, priority, ttl, first-acquirer null; delivery-count uint.
_HEADER_START: Final = b"\x00\x53\x70\xc0\x0a\x05\x40\x40\x40\x40\x70"


def _sym(name: str) -> bytes:
    raw = name.encode("ascii")
    return b"\xa3" + bytes((len(raw),)) + raw


_SEQ_KEY: Final = _sym("x-opt-sequence-number") + b"\x81"
_ENQ_KEY: Final = _sym("x-opt-enqueued-time") + b"\x83"
_LOCK_KEY: Final = _sym("x-opt-locked-until") + b"\x83"
_ANNOTATIONS_SIZE: Final = 1 + len(_SEQ_KEY) + len(_ENQ_KEY) + len(_LOCK_KEY) + 3 * 8
_ANNOTATIONS_START: Final = b"\x00\x53\x72\xc1" + bytes((_ANNOTATIONS_SIZE, 6))


def delivery_prefix(
    *, delivery_count: int, sequence_number: int, enqueued_ms: int, locked_until_ms: int
) -> bytes:
    """Header and message annotations of one delivery (the bare message follows)."""
    return b"".join(
        (
            _HEADER_START,
            _UINT.pack(delivery_count),
            _ANNOTATIONS_START,
            _SEQ_KEY,
            _LONG.pack(sequence_number),
            _ENQ_KEY,
            _LONG.pack(enqueued_ms),
            _LOCK_KEY,
            _LONG.pack(locked_until_ms),
        )
    )


def _data_section(body: bytes) -> bytes:
    if len(body) <= _MAX8:
        return b"\x00\x53\x75\xa0" + bytes((len(body),)) + body
    return b"\x00\x53\x75\xb0" + _UINT.pack(len(body)) + body


def encode_bare(body: bytes, *, message_id: str | None = None) -> bytes:
    """A bare message: optional properties with a message-id, then one data section."""
    if message_id is None:
        return _data_section(body)
    raw = message_id.encode()
    # properties is a list whose first field is message-id (a str8 here).
    item = b"\xa1" + bytes((len(raw),)) + raw
    properties = b"\x00\x53\x73\xc0" + bytes((len(item) + 1, 1)) + item
    return properties + _data_section(body)


def _skip_value(buf: bytes, pos: int) -> int:
    """Offset just past the AMQP value starting at `pos`."""
    code = buf[pos]
    pos += 1
    if code == 0x00:  # described: descriptor, then value
        return _skip_value(buf, _skip_value(buf, pos))
    width = code >> 4
    fixed = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
    if width in fixed:
        return pos + fixed[width]
    if width in {0xA, 0xC, 0xE}:
        return pos + 1 + buf[pos]
    if width in {0xB, 0xD, 0xF}:
        return pos + 4 + int(_UINT.unpack_from(buf, pos)[0])
    msg = f"unknown AMQP type code 0x{code:02x} at offset {pos - 1}"
    raise ValueError(msg)


def _sections(encoded: bytes) -> list[tuple[int, bytes, bytes]]:
    """(descriptor code, whole section bytes, value bytes) for each section of a message."""
    out = []
    pos = 0
    while pos < len(encoded):
        if encoded[pos] != 0x00:
            msg = f"message section at offset {pos} is not a described type"
            raise ValueError(msg)
        descriptor_at = pos + 1
        value_at = _skip_value(encoded, descriptor_at)
        if encoded[descriptor_at] == 0x53:  # smallulong  # noqa: PLR2004
            code = encoded[descriptor_at + 1]
        elif encoded[descriptor_at] == 0x80:  # ulong  # noqa: PLR2004
            code = struct.unpack_from(">Q", encoded, descriptor_at + 1)[0]
        else:
            msg = f"unsupported section descriptor at offset {descriptor_at}"
            raise ValueError(msg)
        end = _skip_value(encoded, value_at)
        out.append((code, encoded[pos:end], encoded[value_at:end]))
        pos = end
    return out


def bare_message(encoded: bytes) -> bytes:
    """Drop header and annotations from an encoded message: the broker writes its own."""
    return b"".join(
        whole
        for code, whole, _ in _sections(encoded)
        if code not in {_HEADER, _DELIVERY_ANNOTATIONS, _MESSAGE_ANNOTATIONS}
    )


def _binary_payload(value: bytes) -> bytes:
    if value[0] == 0xA0:  # noqa: PLR2004
        return value[2 : 2 + value[1]]
    return value[5 : 5 + _UINT.unpack_from(value, 1)[0]]


def split_batch(encoded: bytes) -> list[bytes]:
    """The messages one transfer carries: a batch (every data section a message) or itself.

    The SDK sends a `ServiceBusMessageBatch` as one message (format 0x80013700) whose data
    sections are whole encoded messages; proton does not expose the message format, so a
    body of data sections that each parse as a message with a body is read as a batch.
    """
    sections = _sections(encoded)
    data = [value for code, _, value in sections if code == _DATA]
    others = [code for code, _, _ in sections if code != _DATA]
    if data and not (set(others) - {_HEADER, _MESSAGE_ANNOTATIONS, _PROPERTIES}):
        inner = [_binary_payload(v) for v in data]
        try:
            parsed = [_sections(m) for m in inner if m[:1] == b"\x00"]
        except (ValueError, IndexError, struct.error):
            parsed = []
        bodies = [p for p in parsed if p and all(_SECTION_MIN <= c <= _SECTION_MAX for c, _, _ in p)]
        if len(bodies) == len(inner) and all(any(c >= _DATA for c, _, _ in p) for p in bodies):
            return [bare_message(m) for m in inner]
    return [bare_message(encoded)]


def with_application_properties(bare: bytes, extra: dict[str, str]) -> bytes:
    """`bare` with `extra` merged into its application properties (added when absent)."""
    sections = _sections(bare)
    props: dict[Any, Any] = {}
    for code, whole, _ in sections:
        if code == _APPLICATION_PROPERTIES:
            data = Data()
            data.decode(whole)
            data.rewind()
            data.next()
            described: Any = data.get_object()
            if isinstance(described, Described) and isinstance(described.value, dict):
                props = dict(described.value)
    props.update(extra)
    data = Data()
    data.put_object(Described(ulong(_APPLICATION_PROPERTIES), props))
    encoded_props = data.encode()
    out = [whole for code, whole, _ in sections if code == _PROPERTIES]
    out.append(encoded_props)
    out.extend(whole for code, whole, _ in sections if code not in {_PROPERTIES, _APPLICATION_PROPERTIES})
    return b"".join(out)
