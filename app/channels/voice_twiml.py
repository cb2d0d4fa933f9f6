"""TwiML for a voice turn (app/flows/voice.py ``Turn``), with ``twilio.twiml.voice_response``.

A question is ``<Say>`` lines, then ``<Gather input="dtmf speech" action=… language=… hints=… numDigits=…
finishOnKey=… actionOnEmptyResult="true"><Say>question</Say></Gather>``, then ``<Redirect>`` to the same
action: with no input TwiML falls through to the next verb, so silence comes back to the action and is
re-prompted once (TWILIO.md "Voice TwiML"). Rendering is a pure function of the stored turn and the URL, so
a replayed request gets byte-for-byte the same document.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from app.flows.voice import NURSE_DIAL_TIMEOUT_SECONDS, Turn


def render(turn: Turn, action_url: str) -> str:
    """The TwiML document for ``turn``; ``action_url``: the absolute Gather (or Dial) action, call and
    step in it."""
    response = VoiceResponse()
    for line in turn.say:
        response.say(line, voice=turn.voice, language=turn.language)
    if turn.gather is not None:
        spec = turn.gather
        options: dict[str, str] = {
            "input": spec.input,
            "action": action_url,
            "method": "POST",
            "language": spec.language,
            "timeout": str(spec.timeout),
            "speechTimeout": spec.speech_timeout,
            "actionOnEmptyResult": "true" if spec.action_on_empty_result else "false",
        }
        if spec.hints:
            options["hints"] = ", ".join(spec.hints)
        if spec.num_digits is not None:
            options["numDigits"] = str(spec.num_digits)
        if spec.finish_on_key is not None:
            options["finishOnKey"] = spec.finish_on_key
        gather = response.gather(**options)
        for line in turn.prompt:
            gather.say(line, voice=turn.voice, language=turn.language)
        response.redirect(action_url, method="POST")
    elif turn.dial is not None:
        # A nurse line that is busy or does not answer comes back to the action (DialCallStatus), so the
        # caller is told and given the 911 advice instead of silence.
        response.dial(turn.dial, timeout=str(NURSE_DIAL_TIMEOUT_SECONDS), action=action_url, method="POST")
    else:
        response.hangup()
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
