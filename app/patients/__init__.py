"""Patients: their records (validation, upsert, JSON) and phone numbers."""
