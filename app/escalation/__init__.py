"""Escalations: rules' hits become queue items that a nurse acknowledges and resolves."""
