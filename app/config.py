"""Settings read from the environment (12-factor), with safe demo defaults.

Why a frozen dataclass: every part of the app (web, worker, CLI) builds the same settings the same way,
and tests override them by passing a dict to ``create_app`` instead of mutating globals.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENT_DIR = ROOT / "content"
LOCALES_DIR = ROOT / "locales"
INSTANCE_DIR = ROOT / "instance"


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{INSTANCE_DIR / 'outreach.db'}"
    redis_url: str | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    public_base_url: str = "http://127.0.0.1:5000"
    channel: str = "console"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    #: Where the Twilio REST client sends requests; empty means Twilio itself. Tests and demos point it
    #: at the local server in tests/support so the real client runs end to end without an account.
    twilio_api_base_url: str = ""
    api_token: str = ""
    #: Bearer token for /metrics; empty = the API token (both empty: /metrics is off).
    metrics_token: str = ""
    #: SMS segments per second per sender; None = the sender type's default, 0 = unlimited.
    sms_segments_per_second: float | None = None
    #: Texts one send job delivers concurrently (each waits ~100-300 ms on Twilio's API); at least the
    #: batch size (outbound.SEND_BATCH), or a batch takes several rounds of that wait.
    send_concurrency: int = 50
    #: Seconds the Twilio client waits for an answer before the attempt counts as unconfirmed.
    twilio_timeout_seconds: float = 10.0
    #: Text-to-speech voices per language (Twilio <Say voice=...>): Amazon Polly neural voices by default.
    voice_en: str = "Polly.Joanna-Neural"
    voice_es: str = "Polly.Lupe-Neural"
    #: Spoken answers heard with a lower confidence (0-1) are read back for the caller to confirm.
    speech_confidence_min: float = 0.5
    #: Outbound calls per second per account, shared by every worker (Twilio's default is 1).
    calls_per_second: float = 1.0
    content_dir: Path = CONTENT_DIR
    demo_mode: bool = False
    session_cookie_secure: bool = True
    #: Minutes without a user-initiated request after which a staff session is signed out.
    session_idle_minutes: int = 30
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust (Werkzeug's ProxyFix), so
    #: the per-IP sign-in limit sees the client's address; 0 = none (the app is reached directly).
    trusted_proxies: int = 0
    testing: bool = False

    @property
    def jobs_in_process(self) -> bool:
        return not self.redis_url

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **overrides)

    def with_config(self, config: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
        """Split a ``create_app`` config (DESIGN §3) into these settings and Flask's own configuration.

        Keys are the environment's names (``{"DATABASE_URL": ..., "TESTING": True}``, values typed or as
        the environment would give them: ``"0"``, ``"2.5"``); the field names (``database_url``) are
        accepted too. Any other upper-case key (``MAX_CONTENT_LENGTH``) is returned for ``app.config``,
        as in the Flask tutorial; an unknown lower-case key raises ValueError (a typo, not a setting).
        """
        overrides: dict[str, Any] = {}
        flask_config: dict[str, Any] = {}
        for key, value in config.items():
            if key in ENV_NAMES:
                name = ENV_NAMES[key]
                overrides[name] = _typed(name, value)
            elif key.isupper():
                flask_config[key] = value
            else:
                overrides[key] = value
        return self.with_overrides(overrides), flask_config


#: The environment's name of each setting (``settings_from_env`` reads these; ``TESTING`` is Flask's).
ENV_NAMES: dict[str, str] = {
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "SECRET_KEY": "secret_key",
    "PUBLIC_BASE_URL": "public_base_url",
    "OUTREACH_CHANNEL": "channel",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_FROM_NUMBER": "twilio_from_number",
    "TWILIO_MESSAGING_SERVICE_SID": "twilio_messaging_service_sid",
    "TWILIO_API_BASE_URL": "twilio_api_base_url",
    "API_TOKEN": "api_token",
    "OUTREACH_SMS_RATE": "sms_segments_per_second",
    "OUTREACH_SEND_CONCURRENCY": "send_concurrency",
    "TWILIO_TIMEOUT": "twilio_timeout_seconds",
    "OUTREACH_VOICE_EN": "voice_en",
    "OUTREACH_VOICE_ES": "voice_es",
    "OUTREACH_SPEECH_CONFIDENCE": "speech_confidence_min",
    "OUTREACH_CALL_RATE": "calls_per_second",
    "OUTREACH_CONTENT_DIR": "content_dir",
    "OUTREACH_DEMO": "demo_mode",
    "SESSION_COOKIE_SECURE": "session_cookie_secure",
    "OUTREACH_SESSION_IDLE_MINUTES": "session_idle_minutes",
    "OUTREACH_TRUSTED_PROXIES": "trusted_proxies",
    "TESTING": "testing",
}
_BOOLS = {"demo_mode", "session_cookie_secure", "testing"}
_FLOATS = {"sms_segments_per_second", "twilio_timeout_seconds", "speech_confidence_min", "calls_per_second"}


def _typed(name: str, value: Any) -> Any:
    """A setting's value as the environment would spell it (``"0"``, ``"2.5"``) turned into its type."""
    if not isinstance(value, str):
        return value
    if name in _BOOLS:
        return _bool(value, False)
    if name in _FLOATS:
        return float(value) if value else None
    if name in {"send_concurrency", "session_idle_minutes", "trusted_proxies"}:
        return int(value)
    if name == "content_dir":
        return Path(value)
    if name == "redis_url":
        return value or None
    return value


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    base = Settings()
    database_url = env.get("DATABASE_URL") or base.database_url
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    return Settings(
        database_url=database_url,
        redis_url=env.get("REDIS_URL") or None,
        secret_key=env.get("SECRET_KEY") or base.secret_key,
        public_base_url=(env.get("PUBLIC_BASE_URL") or base.public_base_url).rstrip("/"),
        channel=env.get("OUTREACH_CHANNEL") or base.channel,
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_from_number=env.get("TWILIO_FROM_NUMBER", ""),
        twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
        twilio_api_base_url=env.get("TWILIO_API_BASE_URL", ""),
        api_token=env.get("API_TOKEN", ""),
        metrics_token=env.get("METRICS_TOKEN", ""),
        sms_segments_per_second=float(env["OUTREACH_SMS_RATE"]) if env.get("OUTREACH_SMS_RATE") else None,
        send_concurrency=int(env.get("OUTREACH_SEND_CONCURRENCY") or 50),
        twilio_timeout_seconds=float(env.get("TWILIO_TIMEOUT") or 10.0),
        voice_en=env.get("OUTREACH_VOICE_EN") or base.voice_en,
        voice_es=env.get("OUTREACH_VOICE_ES") or base.voice_es,
        speech_confidence_min=float(env.get("OUTREACH_SPEECH_CONFIDENCE") or base.speech_confidence_min),
        calls_per_second=float(env.get("OUTREACH_CALL_RATE") or base.calls_per_second),
        content_dir=Path(env.get("OUTREACH_CONTENT_DIR") or CONTENT_DIR),
        demo_mode=_bool(env.get("OUTREACH_DEMO"), False),
        session_cookie_secure=_bool(env.get("SESSION_COOKIE_SECURE"), True),
        session_idle_minutes=int(env.get("OUTREACH_SESSION_IDLE_MINUTES") or 30),
        trusted_proxies=int(env.get("OUTREACH_TRUSTED_PROXIES") or 0),
    )
