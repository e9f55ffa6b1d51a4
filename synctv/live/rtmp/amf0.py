"""AMF0: the value encoding of RTMP commands and FLV script data.

Pure and bounded. Decoding checks every declared length against the bytes that remain, caps
nesting depth (``MAX_DEPTH``) and, when asked, the number of values (``max_values``: every
number, string, null, object and array counts, nested or not), so hostile input costs at most its
own size and a bounded number of Python objects; anything malformed or past a bound raises
``AMF0Error`` (a ``ValueError``) and nothing else.

Python mapping (both directions):

==================  =============================================
number (0x00)        ``float`` (``int`` encodes as a number too)
boolean (0x01)       ``bool``
string (0x02/0x0C)   ``str`` (long string chosen when > 65535 bytes)
object (0x03)        ``dict`` with ``str`` keys
null (0x05)          ``None``
undefined (0x06)     ``UNDEFINED``
ECMA array (0x08)    ``ECMAArray`` (a ``dict`` subclass)
strict array (0x0A)  ``list`` (a ``tuple`` encodes too)
date (0x0B)          ``AMF0Date``
==================  =============================================
"""

from __future__ import annotations

import struct
from typing import Any

import attrs

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED_MARKER = 0x06
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C

MAX_DEPTH = 32

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class AMF0Error(ValueError):
    """Bytes that are not valid AMF0, or a value AMF0 cannot carry."""


class TooManyValues(AMF0Error):
    """More values than the decoder was allowed (``max_values``)."""


class _Undefined:
    """The AMF0 ``undefined`` value (distinct from ``null``/``None``)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


class ECMAArray(dict):  # type: ignore[type-arg]
    """An associative array; decodes from and encodes to the ECMA array marker (0x08)."""


@attrs.frozen
class AMF0Date:
    """Milliseconds since the Unix epoch plus the (deprecated, normally 0) time zone."""

    ms: float
    timezone: int = 0


# -- encoding -------------------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AMF0Error(f"string is not encodable as UTF-8: {exc}") from None


def _encode_key(key: Any, out: bytearray) -> None:
    if not isinstance(key, str):
        raise AMF0Error(f"object keys must be str, not {type(key).__name__}")
    raw = _utf8(key)
    if len(raw) > 0xFFFF:
        raise AMF0Error("object key longer than 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _encode_into(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AMF0Error(f"nesting deeper than {MAX_DEPTH}")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise AMF0Error("integer too large for an AMF0 number") from None
        out.append(NUMBER)
        out += _DOUBLE.pack(number)
    elif isinstance(value, str):
        raw = _utf8(value)
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        else:
            if len(raw) > 0xFFFFFFFF:
                raise AMF0Error("string too long for AMF0")
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, dict):
        if isinstance(value, ECMAArray):
            out.append(ECMA_ARRAY)
            out += _U32.pack(len(value) & 0xFFFFFFFF)
        else:
            out.append(OBJECT)
        for key, item in value.items():
            _encode_key(key, out)
            _encode_into(item, out, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(value, (list, tuple)):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_into(item, out, depth + 1)
    elif isinstance(value, AMF0Date):
        out.append(DATE)
        try:
            out += _DATE.pack(float(value.ms), value.timezone)
        except struct.error as exc:
            raise AMF0Error(f"bad date: {exc}") from None
    else:
        raise AMF0Error(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: Any) -> bytes:
    """Encode each value in turn and concatenate (an RTMP command is several values)."""
    out = bytearray()
    for value in values:
        _encode_into(value, out, 0)
    return bytes(out)


# -- decoding -------------------------------------------------------------------------------------


class _Decoder:
    __slots__ = ("data", "end", "pos", "values_left")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, max_values: int | None = None) -> None:
        self.data = bytes(data)
        self.pos = pos
        self.end = len(self.data)
        self.values_left = max_values

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise AMF0Error(f"truncated: need {n} bytes at offset {self.pos}, have {self.end - self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def text(self, n: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AMF0Error(f"invalid UTF-8 in string at offset {self.pos - n}") from None

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def properties(self, target: dict[str, Any], depth: int) -> None:
        while True:
            key = self.text(self.u16())
            if key == "" and self.pos < self.end and self.data[self.pos] == OBJECT_END:
                self.pos += 1
                return
            target[key] = self.value(depth + 1)

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise AMF0Error(f"nesting deeper than {MAX_DEPTH}")
        if self.values_left is not None:
            if self.values_left <= 0:
                raise TooManyValues("more AMF0 values than the limit")
            self.values_left -= 1
        marker = self.take(1)[0]
        if marker == NUMBER:
            return _DOUBLE.unpack(self.take(8))[0]
        if marker == BOOLEAN:
            return self.take(1)[0] != 0
        if marker == STRING:
            return self.text(self.u16())
        if marker == LONG_STRING:
            return self.text(self.u32())
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == OBJECT:
            obj: dict[str, Any] = {}
            self.properties(obj, depth)
            return obj
        if marker == ECMA_ARRAY:
            self.u32()  # advisory count; the end marker is authoritative
            arr = ECMAArray()
            self.properties(arr, depth)
            return arr
        if marker == STRICT_ARRAY:
            count = self.u32()
            if count > self.end - self.pos:  # every element takes at least one byte
                raise AMF0Error(f"strict array of {count} items cannot fit in {self.end - self.pos} bytes")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:
            ms, tz = _DATE.unpack(self.take(10))
            return AMF0Date(ms, tz)
        if marker == OBJECT_END:
            raise AMF0Error(f"object end marker outside an object at offset {self.pos - 1}")
        raise AMF0Error(f"unsupported AMF0 marker 0x{marker:02x} at offset {self.pos - 1}")


def decode_value(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
    """Decode one value at ``offset``; return it and the offset just past it."""
    if offset < 0 or offset > len(data):
        raise AMF0Error("offset out of range")
    decoder = _Decoder(data, offset)
    value = decoder.value()
    return value, decoder.pos


def decode_all(data: bytes | bytearray | memoryview, max_values: int | None = None) -> list[Any]:
    """Decode every value in ``data`` (an RTMP command or data message body); with ``max_values``,
    more values than that in all (nested ones included) is an ``AMF0Error``."""
    decoder = _Decoder(data, max_values=max_values)
    values = []
    while decoder.pos < decoder.end:
        values.append(decoder.value())
    return values
