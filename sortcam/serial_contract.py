"""Serial contract, version 1: host to sorter (docs/DESIGN.md, "Serial contract").

115200 8N1, ASCII lines ending in ``\\n``, each ``<body>*<CS>`` where ``CS`` is two hex
digits (written upper case, read in either case): the XOR of every byte of ``body``.
The C++ twin of this module is ``firmware/lib/sortcam_core/include/sortcam/serial_protocol.h``;
``tests/firmware/test_contract_agreement.py`` checks that the two agree.

Messages (``<id>`` is the host's item number, a decimal integer 1..4294967295, unique per
item and kept across host restarts; ``<bin>`` is a gate number 0..GATE_MAX):

- host: ``SORT <id> <bin> <delay_ms>``, ``PING``
- sorter: ``ACK <id>``, ``NAK <id> <reason>``, ``PONG <fw> <bins>``, ``EVT <text>``
"""

from __future__ import annotations

from dataclasses import dataclass

from sortcam.errors import ContractError

VERSION = 1
BAUD = 115200
MAX_LINE = 80
"""Longest line either side may send, ``\\n`` included."""
ID_MIN, ID_MAX = 1, 4294967295
GATE_MAX = 15
DELAY_MAX_MS = 600000
NAK_REASONS: tuple[str, ...] = ("checksum", "syntax", "gate", "delay", "busy", "jam", "full")
EVENTS: tuple[str, ...] = ("JAM", "READY", "BIN_FULL", "CLEARED")

HOST_VERBS: tuple[str, ...] = ("SORT", "PING")
SORTER_VERBS: tuple[str, ...] = ("ACK", "NAK", "PONG", "EVT")


def checksum(body: str | bytes) -> int:
    """XOR of every byte of ``body`` (the text between line start and ``*``)."""
    data = body.encode("ascii") if isinstance(body, str) else body
    cs = 0
    for b in data:
        cs ^= b
    return cs


def encode(body: str) -> bytes:
    """One wire line: ``body*CS\\n``."""
    if not body or any(c in body for c in "*\r\n") or not body.isascii() or not body.isprintable():
        raise ContractError(f"cannot send serial body {body!r}")
    line = f"{body}*{checksum(body):02X}\n".encode("ascii")
    if len(line) > MAX_LINE:
        raise ContractError(f"serial line longer than {MAX_LINE} bytes")
    return line


class ChecksumError(ContractError):
    """The line's checksum does not match; ``body`` is what came before ``*``."""

    def __init__(self, body: str) -> None:
        super().__init__(f"bad checksum on serial line {body!r}")
        self.body = body


def decode(line: bytes | str) -> str:
    """Check one received line (with or without its ``\\n``/``\\r\\n``) and return its body."""
    try:
        text = line.decode("ascii") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        raise ContractError("serial line is not ASCII") from None
    if not text.isascii():
        raise ContractError("serial line is not ASCII")
    text = text.rstrip("\r\n")
    star = text.rfind("*")
    if star <= 0 or len(text) - star != 3:
        raise ContractError(f"serial line without checksum: {text!r}")
    body, cs_text = text[:star], text[star + 1 :]
    if not all(c in "0123456789abcdefABCDEF" for c in cs_text):
        raise ContractError(f"serial line with bad checksum digits: {text!r}")
    cs = int(cs_text, 16)
    if checksum(body.encode("ascii")) != cs:
        raise ChecksumError(body)
    return body


@dataclass(frozen=True)
class Message:
    """A parsed serial message. Fields not used by ``verb`` are left at their defaults."""

    verb: str
    item_id: int = 0
    gate: int = 0
    delay_ms: int = 0
    reason: str = ""
    fw: str = ""
    bins: int = 0
    text: str = ""


def _uint(token: str, lo: int, hi: int, what: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²" (int() refuses it) and "７" (int() reads 7)
    if not token.isascii() or not token.isdigit() or len(token) > 10:
        raise ContractError(f"{what} must be a decimal integer, got {token!r}")
    value = int(token)
    if not lo <= value <= hi:
        raise ContractError(f"{what} {value} outside {lo}..{hi}")
    return value


def parse(body: str) -> Message:
    """Parse a checked body into a :class:`Message`; raises :class:`ContractError`."""
    parts = body.split(" ")
    verb, args = parts[0], parts[1:]
    if verb == "SORT" and len(args) == 3:
        return Message(
            "SORT",
            item_id=_uint(args[0], ID_MIN, ID_MAX, "id"),
            gate=_uint(args[1], 0, GATE_MAX, "bin"),
            delay_ms=_uint(args[2], 0, DELAY_MAX_MS, "delay_ms"),
        )
    if verb == "PING" and not args:
        return Message("PING")
    if verb == "ACK" and len(args) == 1:
        return Message("ACK", item_id=_uint(args[0], ID_MIN, ID_MAX, "id"))
    if verb == "NAK" and len(args) == 2:
        # NAK for a line whose id could not be read carries id 0.
        return Message("NAK", item_id=_uint(args[0], 0, ID_MAX, "id"), reason=args[1])
    if verb == "PONG" and len(args) == 2:
        return Message("PONG", fw=args[0], bins=_uint(args[1], 1, GATE_MAX + 1, "bins"))
    if verb == "EVT" and args:
        return Message("EVT", text=" ".join(args))
    raise ContractError(f"unknown or malformed serial message {body!r}")


def sort_line(item_id: int, gate: int, delay_ms: int) -> bytes:
    _uint(str(item_id), ID_MIN, ID_MAX, "id")
    _uint(str(gate), 0, GATE_MAX, "bin")
    _uint(str(delay_ms), 0, DELAY_MAX_MS, "delay_ms")
    return encode(f"SORT {item_id} {gate} {delay_ms}")


def ping_line() -> bytes:
    return encode("PING")


def ack_line(item_id: int) -> bytes:
    return encode(f"ACK {item_id}")


def nak_line(item_id: int, reason: str) -> bytes:
    return encode(f"NAK {item_id} {reason}")


def pong_line(fw: str, bins: int) -> bytes:
    return encode(f"PONG {fw} {bins}")


def evt_line(text: str) -> bytes:
    return encode(f"EVT {text}")
