"""The composition root: builds the Runtime (database, job queue, channel, content, rate limiter) from Settings.

Why a module of its own (cosmicpython's ``bootstrap``): web, worker and CLI wire the same parts, and no
service should reach the Flask app or its blueprints to get them. Services receive a ``Runtime``; only
entry points (``create_app``, the job functions in app/tasks.py, the worker, the CLI) import this module.
Nothing is read or connected at import time.
"""

from __future__ import annotations

import logging

from app import runtime as runtime_registry
from app.config import Settings, settings_from_env
from app.db import install_commit_hooks, make_engine, make_session_factory
from app.runtime import Runtime, set_current


def build_runtime(settings: Settings) -> Runtime:
    """Wire the parts for ``settings`` and register the result as this process's current runtime.

    Raises ``ValueError`` when ``OUTREACH_CHANNEL`` is neither ``console`` nor ``twilio``.
    """
    from app.channels.base import Channel, VoiceChannel
    from app.channels.rate_limit import build_call_limiter, build_rate_limiter
    from app.content import load_content
    from app.jobs import InProcessQueue, JobQueue, RqQueue

    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    install_commit_hooks(sessions)
    jobs: JobQueue = RqQueue(settings.redis_url) if settings.redis_url else InProcessQueue()
    channel: Channel
    voice: VoiceChannel
    if settings.channel == "twilio":
        from app.channels.twilio_sms import TwilioSmsChannel
        from app.channels.twilio_voice import TwilioVoiceChannel

        channel = TwilioSmsChannel(settings)
        voice = TwilioVoiceChannel(settings, client=channel.client)
    elif settings.channel == "console":
        from app.channels.console import ConsoleChannel
        from app.channels.twilio_voice import ConsoleVoiceChannel

        channel = ConsoleChannel(sessions)
        voice = ConsoleVoiceChannel()
    else:
        raise ValueError(f"OUTREACH_CHANNEL must be console or twilio, not {settings.channel!r}")

    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        jobs=jobs,
        channel=channel,
        content=load_content(settings.content_dir),
        rate_limiter=build_rate_limiter(settings),
        voice=voice,
        call_limiter=build_call_limiter(settings),
    )
    set_current(runtime)
    return runtime


def current_runtime() -> Runtime:
    """The runtime of this process; a worker started without an app builds one from the environment."""
    return runtime_registry.current_or(lambda: build_runtime(settings_from_env()))


def configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Library loggers that would print request bodies or numbers stay quiet.
    for name in ("twilio", "twilio.http_client", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
