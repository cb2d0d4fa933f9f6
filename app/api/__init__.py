"""The JSON API (``/api/v1``) for enrolling systems and reports; bearer ``API_TOKEN``."""
