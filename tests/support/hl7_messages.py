"""Real-world-shaped HL7 v2 ADT messages for tests: as interface engines (Epic Bridges, Rhapsody,
Mirth) deliver them — escaped delimiters in names, repeating identifiers and phones, Z-segments, empty
optional fields, segments ending with CR."""

from __future__ import annotations


def adt(
    event: str = "A03",
    *,
    control_id: str = "MSG00001",
    mrn: str = "E1001",
    family: str = "O\\T\\Brien",
    given: str = "Mary",
    phones: str = "(617)555-0123^PRN^PH~^PRN^CP^^1^617^5550199",
    language: str = "ENG^English^HL70296",
    unit: str = "4W-CARD",
    visit: str = "V123456",
    admitted: str = "20261127100000",
    discharged: str = "20261130080000-0500",
    diagnoses: tuple[str, ...] = ("I50.23^Acute on chronic systolic (congestive) heart failure^I10",),
    facility: str = "GENERAL HOSP",
    message_type: str = "ADT",
    version: str = "2.5.1",
    extra: tuple[str, ...] = (),
) -> str:
    segments = [
        f"MSH|^~\\&|EPIC|{facility}|OUTREACH|NORTH|20261130083000-0500||{message_type}^{event}^ADT_{event}|"
        f"{control_id}|P|{version}|||AL|NE",
        f"EVN|{event}|20261130082500-0500|||1234^Nurse^Joy",
        f"PID|1||{mrn}^^^GH^MR~999-99-9999^^^SSA^SS||{family}^{given}^Ann^^^^L~Smith^Mary^^^^^M||19500301|F||"
        f"2106-3|1 Main St\\S\\Apt 2^^Boston^MA^02118^USA||{phones}||{language}|M|||||||||||||||",
        "PD1|||GENERAL HOSPITAL^^1234",
        f"PV1|1|I|{unit}^401^A^GH^^^^^4 WEST CARDIAC||||1234^Smith^John^^^^MD|||CAR||||1|||1234^Smith^John|IN|"
        f"{visit}|||||||||||||||||||||||||{admitted}|{discharged}",
    ]
    for n, diagnosis in enumerate(diagnoses, start=1):
        segments.append(f"DG1|{n}||{diagnosis}||20261127|A")
    segments.append("ZPD|VIP^N|Custom site data with \\F\\ escaped field separator")
    segments.extend(extra)
    return "\r".join(segments) + "\r"
