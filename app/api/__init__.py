"""The JSON API (``/api/v1``) for enrolling systems and reports; bearer ``API_TOKEN`` (global admin) or a
program token (``outreach create-token``, app/patients/api_tokens.py)."""
