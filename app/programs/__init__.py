"""Programs, enrollment (API, CSV, HL7 ADT over HTTP and MLLP) and the TCM clock (DESIGN §1 "Where code lives")."""
