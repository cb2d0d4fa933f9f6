"""Campaigns and scheduling: which touches are due when, in the patient's own time."""
