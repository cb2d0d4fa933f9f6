"""The one error shape: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}

    def response(self) -> tuple[Response, int]:
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message, "fields": self.fields}}
        return jsonify(body), self.status
