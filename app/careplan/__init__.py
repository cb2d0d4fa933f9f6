"""Care plans per patient (issue 12 item 3): app/careplan/service.py."""
