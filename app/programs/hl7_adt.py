"""Reading HL7 v2 ADT messages (with the maintained ``hl7`` parser) into plain data, and writing ACKs.

Pure: no SQL, no sockets. ``read_adt(text) -> AdtEvent`` or raises ``AdtProblem`` carrying the ACK code:
- ``AR`` (application reject): not an HL7 message, no MSH-10 control id, not an ADT message;
- ``AE`` (application error): an ADT message whose content we cannot use (no MRN in PID-3, an invalid
  date, no discharge time on an A03, ...). The reason names the field and the problem, never a value
  from the message (values are PHI).

Fields read (HL7 v2.3-2.8 positions): MSH-3/4 sender, MSH-7, MSH-9 type^event, MSH-10 control id,
MSH-12 version; EVN-2 recorded time; PID-3 identifiers (the repetition with type MR, else the first),
PID-5 name (first repetition), PID-7 birth date, PID-13 home phones (a cell, ``CP``, preferred) and
PID-14 work phones, PID-15 language; PV1-3.1 unit, PV1-19 visit number, PV1-44 admit time, PV1-45
discharge time; DG1-3.1 diagnosis codes. Escapes (``\\T\\``, ``\\F\\``, ``\\S\\``, ``\\R\\``, ``\\E\\``,
``\\X..\\``) are decoded by the parser; Z-segments and unknown segments are ignored; missing optional
fields are ``None``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import hl7

#: The events Outreach acts on; any other ADT event is acknowledged (AA) and changes nothing.
HANDLED_EVENTS = frozenset({"A01", "A03", "A04", "A08", "A11", "A13"})
MAX_REPEATS = 20
#: HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")
LANGUAGES = {"en": "en", "eng": "en", "english": "en", "es": "es", "spa": "es", "spanish": "es", "espanol": "es"}


class AdtProblem(Exception):
    """A message we will not act on: ``ack_code`` AR (rejected) or AE (error), ``reason`` for MSA-3/ERR."""

    def __init__(self, ack_code: str, reason: str, *, control_id: str = "", sender: str = "", event: str = ""):
        super().__init__(reason)
        self.ack_code = ack_code
        self.reason = reason
        self.control_id = control_id
        self.sender = sender
        self.event = event


@dataclass(frozen=True)
class AdtEvent:
    event: str
    control_id: str
    #: MSH-3 and MSH-4 (sending application and facility), the scope of the control id.
    sender: str
    facility: str
    mrn: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: dt.date | None = None
    #: Phone numbers as sent, most suitable for texts first (cell before home before work).
    phones: tuple[str, ...] = ()
    language: str | None = None
    unit: str | None = None
    visit_number: str | None = None
    #: Naive-or-aware times as the feed gave them; ``localise`` turns them into UTC.
    recorded_at: dt.datetime | None = None
    admitted_at: dt.datetime | None = None
    discharged_at: dt.datetime | None = None
    diagnoses: tuple[str, ...] = ()


def _get(segment: Any, field: int, repeat: int = 1, component: int = 1, sub: int = 1) -> str:
    try:
        value = segment.extract_field(1, field, repeat, component, sub)
    except (IndexError, KeyError):
        return ""
    return str(value).strip()


def _repeats(segment: Any, field: int) -> int:
    count = 0
    for repeat in range(1, MAX_REPEATS + 1):
        try:
            segment.extract_field(1, field, repeat, 1, 1)
        except (IndexError, KeyError):
            break
        count = repeat
    return count


def _segment(message: Any, name: str) -> Any | None:
    try:
        return message.segment(name)
    except KeyError:
        return None


def parse_hl7_time(value: str, where: str) -> dt.datetime | None:
    """HL7 DTM text → datetime (aware if the feed gave an offset, else naive local); AE if malformed."""
    if not value:
        return None
    match = _DTM.match(value)
    if not match:
        raise AdtProblem("AE", f"{where}: not an HL7 date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ])")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        raise AdtProblem("AE", f"{where}: not a real date/time") from None
    if not 1900 <= moment.year <= 2199:
        raise AdtProblem("AE", f"{where}: year out of range")
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        if delta > dt.timedelta(hours=14):
            raise AdtProblem("AE", f"{where}: time zone offset out of range")
        moment = moment.replace(tzinfo=dt.timezone(sign * delta))
    return moment


def localise(moment: dt.datetime, tz: str) -> dt.datetime:
    """A feed time as UTC: a time without offset is the program's local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(dt.UTC)


def language_code(value: str) -> str | None:
    """PID-15 (``es``, ``SPA``, ``spa^Spanish``) → ``en`` / ``es``; None when unknown or absent."""
    return LANGUAGES.get(value.strip().lower()) if value else None


def _phones(pid: Any) -> tuple[str, ...]:
    """PID-13 (home) then PID-14 (work), XTN: 1 formatted number, 2 use code, 3 equipment (CP = cell),
    5 country code, 6 area code, 7 local number. Cell phones first: texts need one."""
    found: list[tuple[int, int, str]] = []
    order = 0
    for field, rank in ((13, 1), (14, 2)):
        for repeat in range(1, _repeats(pid, field) + 1):
            formatted = _get(pid, field, repeat, 1)
            equipment = _get(pid, field, repeat, 3).upper()
            if equipment in {"INTERNET", "X.400", "FX", "BP"}:
                continue  # e-mail, fax, beeper: cannot receive a text
            if not formatted:
                country = _get(pid, field, repeat, 5)
                area = _get(pid, field, repeat, 6)
                local = _get(pid, field, repeat, 7)
                formatted = ("+" + country if country else "") + area + local if local else ""
            if formatted:
                order += 1
                found.append((0 if equipment == "CP" else rank, order, formatted))
    return tuple(number for _rank, _order, number in sorted(found))


def read_adt(text: str) -> AdtEvent:
    """Parse one ADT message; raises AdtProblem (AR or AE) with the reason."""
    cleaned = text.replace("\r\n", "\r").replace("\n", "\r").strip("\x0b\x1c\r\n ")
    if not cleaned.startswith("MSH") or len(cleaned) < 8:
        raise AdtProblem("AR", "not an HL7 v2 message: it must start with an MSH segment")
    try:
        message = hl7.parse(cleaned)
    except Exception:  # the parser raises several types on garbage
        raise AdtProblem("AR", "not an HL7 v2 message: MSH could not be parsed") from None
    msh = message.segment("MSH")
    sender_app = _get(msh, 3)
    facility = _get(msh, 4)
    sender = f"{sender_app}|{facility}"[:200]
    control_id = _get(msh, 10)
    message_type = _get(msh, 9, 1, 1).upper()
    evn = _segment(message, "EVN")
    event = (_get(msh, 9, 1, 2) or (_get(evn, 1) if evn is not None else "")).upper()
    if not control_id:
        raise AdtProblem("AR", "MSH-10: the message control id is required", sender=sender, event=event)
    if len(control_id) > 64:
        raise AdtProblem("AR", "MSH-10: the message control id is longer than 64 characters", sender=sender)
    if message_type != "ADT":
        raise AdtProblem(
            "AR", "MSH-9: only ADT messages are accepted here", control_id=control_id, sender=sender, event=event
        )
    if not re.fullmatch(r"A\d\d", event):
        raise AdtProblem("AR", "MSH-9.2: no ADT trigger event", control_id=control_id, sender=sender)
    context = {"control_id": control_id, "sender": sender, "event": event}
    if event not in HANDLED_EVENTS:
        return AdtEvent(event=event, control_id=control_id, sender=sender, facility=facility, mrn="")
    pid = _segment(message, "PID")
    if pid is None:
        raise AdtProblem("AE", "PID: the patient identification segment is missing", **context)
    mrn = ""
    for repeat in range(1, _repeats(pid, 3) + 1):
        if _get(pid, 3, repeat, 5).upper() == "MR" and _get(pid, 3, repeat, 1):
            mrn = _get(pid, 3, repeat, 1)
            break
    if not mrn:
        mrn = _get(pid, 3, 1, 1) or _get(pid, 2, 1, 1)
    if not mrn:
        raise AdtProblem("AE", "PID-3: no patient identifier (MRN)", **context)
    if len(mrn) > 64 or any(ord(ch) < 32 for ch in mrn):
        raise AdtProblem("AE", "PID-3: the MRN is longer than 64 characters or holds control characters", **context)
    try:
        birth = parse_hl7_time(_get(pid, 7), "PID-7")
    except AdtProblem as exc:
        raise AdtProblem("AE", exc.reason, **context) from None
    pv1 = _segment(message, "PV1")
    try:
        # EVN-2 (when the event was recorded), not MSH-7: a batch may be sent days after the discharge.
        recorded = parse_hl7_time(_get(evn, 2) if evn is not None else "", "EVN-2")
        admitted = parse_hl7_time(_get(pv1, 44) if pv1 is not None else "", "PV1-44")
        discharged = parse_hl7_time(_get(pv1, 45) if pv1 is not None else "", "PV1-45")
    except AdtProblem as exc:
        raise AdtProblem("AE", exc.reason, **context) from None
    diagnoses: list[str] = []
    try:
        dg1s = list(message.segments("DG1"))
    except KeyError:
        dg1s = []
    for dg1 in dg1s:
        code = _get(dg1, 3, 1, 1)
        if code and code not in diagnoses:
            diagnoses.append(code[:16])
    return AdtEvent(
        event=event,
        control_id=control_id,
        sender=sender,
        facility=facility,
        mrn=mrn,
        given_name=_get(pid, 5, 1, 2) or None,
        family_name=_get(pid, 5, 1, 1) or None,
        birth_date=birth.date() if birth else None,
        phones=_phones(pid),
        language=language_code(_get(pid, 15, 1, 1)) or language_code(_get(pid, 15, 1, 2)),
        unit=(_get(pv1, 3, 1, 1) or None) if pv1 is not None else None,
        visit_number=(_get(pv1, 19, 1, 1) or None) if pv1 is not None else None,
        recorded_at=recorded,
        admitted_at=admitted,
        discharged_at=discharged,
        diagnoses=tuple(diagnoses),
    )


def _clean_ack_text(reason: str) -> str:
    """MSA-3 / ERR text: no delimiters or control characters, at most 80 characters (MSA-3 is ST 80)."""
    return re.sub(r"[|^~\\&\x00-\x1f]", " ", reason)[:80].strip()


def build_ack(text: str, ack_code: str, reason: str, *, control_id: str | None = None, now: dt.datetime) -> str:
    """The ACK for ``text`` (original mode, HL7 v2 chapter 2): MSH, MSA (code, the message's control id,
    the reason) and, for AE/AR, an ERR segment. Works for a message too broken to parse (then MSA-2 is
    empty and the separators are the defaults). Segments end with CR."""
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
    own_id = f"ACK{now.strftime('%Y%m%d%H%M%S%f')}"[:20]
    reason_text = _clean_ack_text(reason)
    sending_app = sending_fac = receiving_app = receiving_fac = ""
    trigger = version = ""
    processing = "P"
    original_id = control_id or ""
    cleaned = text.replace("\r\n", "\r").replace("\n", "\r").strip("\x0b\x1c\r\n ")
    if cleaned.startswith("MSH"):
        try:
            msh = hl7.parse(cleaned).segment("MSH")
            sending_app, sending_fac = _get(msh, 3), _get(msh, 4)
            receiving_app, receiving_fac = _get(msh, 5), _get(msh, 6)
            trigger = _clean_ack_text(_get(msh, 9, 1, 2))
            processing = _get(msh, 11) or "P"
            version = _get(msh, 12)
            original_id = original_id or _get(msh, 10)
        except Exception:  # too broken to read even the header: answer with defaults
            pass
    header = [
        "MSH",
        "^~\\&",
        receiving_app or "OUTREACH",
        receiving_fac,
        sending_app,
        sending_fac,
        stamp,
        "",
        f"ACK^{trigger}^ACK",
        own_id,
        processing,
        version or "2.5.1",
    ]
    parts = [
        "|".join(header[:2] + [_clean_ack_text(v) if i != 8 else v for i, v in enumerate(header[2:], start=2)]),
        f"MSA|{ack_code}|{_clean_ack_text(original_id)}|{reason_text}",
    ]
    if ack_code != "AA":
        # HL7 table 0357: 207 application internal error (AE), 200 unsupported message type (AR).
        condition = "207^Application internal error" if ack_code == "AE" else "200^Unsupported message type"
        parts.append(f"ERR|||{condition}^HL70357|E||||{reason_text}")
    return "\r".join(parts) + "\r"


def ack_code_of(ack: str) -> str:
    """MSA-1 of an ACK (``AA``/``AE``/``AR``), for clients and tests."""
    for segment in ack.split("\r"):
        if segment.startswith("MSA|"):
            return segment.split("|")[1]
    return ""
