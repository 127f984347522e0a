"""Turn a checked Accounting-Request into an `AccountingRecord`."""

from __future__ import annotations

from pyrad import packet as rp

from hotspotd.radius.messages import AccountingRecord, DropPacket
from hotspotd.radius.packets import first_text, first_value

GIGAWORD = 2**32


def accounting_record_from(
    packet: rp.AcctPacket, nas_address: str, received_at: float
) -> AccountingRecord:
    """Build the record; a request without Acct-Status-Type or Acct-Session-Id is malformed."""
    status_type = first_text(packet, "Acct-Status-Type")
    if status_type is None:
        raise DropPacket("malformed", "Accounting-Request without Acct-Status-Type")
    session_id = first_text(packet, "Acct-Session-Id")
    if session_id is None:
        raise DropPacket("malformed", "Accounting-Request without Acct-Session-Id")
    return AccountingRecord(
        status_type=status_type,
        session_id=session_id,
        user_name=first_text(packet, "User-Name"),
        calling_station_id=first_text(packet, "Calling-Station-Id"),
        framed_ip=first_text(packet, "Framed-IP-Address"),
        nas_address=nas_address,
        session_time=_integer(packet, "Acct-Session-Time"),
        input_octets=_octets(packet, "Acct-Input-Octets", "Acct-Input-Gigawords"),
        output_octets=_octets(packet, "Acct-Output-Octets", "Acct-Output-Gigawords"),
        input_packets=_integer(packet, "Acct-Input-Packets") or 0,
        output_packets=_integer(packet, "Acct-Output-Packets") or 0,
        terminate_cause=first_text(packet, "Acct-Terminate-Cause"),
        received_at=received_at,
    )


def _octets(packet: rp.AcctPacket, octets_name: str, gigawords_name: str) -> int:
    """Fold the 32-bit octet counter and its gigawords (wrap count) into one integer."""
    octets = _integer(packet, octets_name) or 0
    gigawords = _integer(packet, gigawords_name) or 0
    return gigawords * GIGAWORD + octets


def _integer(packet: rp.AcctPacket, name: str) -> int | None:
    value = first_value(packet, name)
    if value is None:
        return None
    if not isinstance(value, int):
        raise DropPacket("malformed", f"attribute {name} is not an integer: {value!r}")
    return value
