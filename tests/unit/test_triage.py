"""Red-flag triage rules: tables of messages per language for every category and every context modifier.

Expectations are written as (text, reason, status): status "current" means the verdict is an EMERGENCY for
that reason, "confirm" that it asks "right now?", None that the reason is not a red flag in this message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.triage import Triage, Verdict, load_triage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def triage() -> Triage:
    return load_triage(ROOT / "content" / "triage", ROOT)


def status_of(verdict: Verdict, reason: str) -> str | None:
    if reason in verdict.emergency:
        return "current"
    if reason in verdict.to_confirm:
        return "confirm"
    return None


CATEGORIES_EN = [
    ("my chest feels so heavy right now", "chest_pain"),
    ("theres pressure in my chest n it goes to my jaw", "chest_pain"),
    ("left arm aching and im all sweaty and sick", "chest_pain"),
    ("i literally cannot breathe", "breathing"),
    ("hes gasping and his lips are turning gray", "breathing"),
    ("albuterol not helping at all", "breathing"),
    ("my oxygen is 82", "breathing"),
    ("the left side of her face is sagging", "stroke"),
    ("all of a sudden i cant see anything out of my right eye", "stroke"),
    ("his speech is slurred", "stroke"),
    ("my husband wont wake up", "unresponsive"),
    ("she collapsed in the yard", "unresponsive"),
    ("dad is having a seizure", "seizure"),
    ("i passed out in the shower", "fainting"),
    ("i swallowed a whole bottle of sleeping pills", "overdose"),
    ("my granddaughter swallowed my blood pressure pills", "overdose"),
    ("i want to kill myself", "suicide"),
    ("my brother keeps saying he wants to end his life", "suicide"),
    ("im bleeding a lot and it wont stop", "bleeding"),
    ("i keep coughing up blood", "coughing_blood"),
    ("my throat is closing", "allergic_reaction"),
    ("her sugar is 32 and shes not making sense", "severe_hypoglycemia"),
    ("my wife is suddenly disoriented and doesnt know where she is", "confusion"),
]

CATEGORIES_ES = [
    ("tengo un dolor fuerte en el pecho", "chest_pain"),
    ("siento opresion en el pecho", "chest_pain"),
    ("no puedo respirar bien nada", "breathing"),
    ("a mi papa se le pusieron los labios morados", "breathing"),
    ("se le cayo la cara de un lado", "stroke"),
    ("de repente no puedo mover el brazo izquierdo", "stroke"),
    ("mi abuela no despierta", "unresponsive"),
    ("mi esposa esta convulsionando", "seizure"),
    ("me desmaye en la cocina", "fainting"),
    ("me tome todo el frasco de pastillas", "overdose"),
    ("ya no quiero vivir", "suicide"),
    ("mi hijo dice que se quiere matar", "suicide"),
    ("estoy vomitando sangre", "bleeding"),
    ("estoy tosiendo sangre desde ayer", "coughing_blood"),
    ("se me esta hinchando la lengua", "allergic_reaction"),
    ("el azucar en 30 y esta muy confundido", "severe_hypoglycemia"),
    ("mi mama no sabe donde esta", "confusion"),
]


@pytest.mark.parametrize(("text", "reason"), CATEGORIES_EN + CATEGORIES_ES)
def test_every_category_is_an_emergency_now(triage: Triage, text: str, reason: str) -> None:
    verdict = triage.assess(text)
    assert verdict.level == "EMERGENCY"
    assert reason in verdict.emergency


MODIFIERS = [
    # negation, and its scope ending at but / pero and at punctuation
    ("en", "no chest pain", "chest_pain", None),
    ("en", "I don't have any chest pain", "chest_pain", None),
    ("en", "denies chest pain or pressure", "chest_pain", None),
    ("en", "wouldn't say my chest is pain free", "chest_pain", "current"),
    ("en", "no but my chest hurts", "chest_pain", "current"),
    ("en", "no fever but my chest hurts", "chest_pain", "current"),
    ("en", "No. I want to die", "suicide", "current"),
    ("en", "No I want to die", "suicide", "current"),
    ("en", "chest pain? no", "chest_pain", None),
    ("es", "no tengo dolor en el pecho", "chest_pain", None),
    ("es", "sin dolor de pecho", "chest_pain", None),
    ("es", "no, pero me duele el pecho", "chest_pain", "current"),
    ("es", "no tengo fiebre pero me duele mucho el pecho", "chest_pain", "current"),
    ("es", "ni dolor de pecho ni nada", "chest_pain", None),
    # historical / resolved / recent
    ("en", "had a stroke 10 years ago", "stroke", None),
    ("en", "my mother had a heart attack back in 2010", "chest_pain", None),
    ("en", "i had chest pain yesterday", "chest_pain", "confirm"),
    ("en", "the chest pain is gone now", "chest_pain", "confirm"),
    ("en", "this morning my arm went numb for a bit but its fine now", "stroke", "current"),
    ("en", "last week my face felt numb for a minute", "stroke", "confirm"),
    ("es", "tuve un derrame hace muchos anos", "stroke", None),
    ("es", "ayer me dolio el pecho", "chest_pain", "confirm"),
    ("es", "el dolor de pecho ya se me quito", "chest_pain", "confirm"),
    ("es", "se me quitó el dolor de pecho", "chest_pain", "confirm"),
    # present overrides the past
    ("en", "had chest pain since this morning and it still hurts", "chest_pain", "current"),
    ("es", "desde anoche me duele el pecho", "chest_pain", "current"),
    # hypothetical
    ("en", "what should I do if I get chest pain", "chest_pain", None),
    ("en", "in case i can't breathe who do i call", "breathing", None),
    ("es", "si me da dolor de pecho que hago", "chest_pain", None),
    ("es", "que hago si no puedo respirar", "breathing", None),
    # uncertain
    ("en", "maybe chest pain, hard to say", "chest_pain", "confirm"),
    ("en", "i think i have a little chest pain", "chest_pain", "confirm"),
    ("es", "no se si es dolor de pecho", "chest_pain", "confirm"),
    ("es", "tal vez me duele el pecho", "chest_pain", "confirm"),
    # another person now vs in the past
    ("en", "my wife won't wake up", "unresponsive", "current"),
    ("en", "my dad had a stroke years ago", "stroke", None),
    ("en", "my son says he wants to end it all", "suicide", "current"),
    ("es", "mi esposo no responde", "unresponsive", "current"),
    ("es", "mi papa tuvo un derrame hace anos", "stroke", None),
    # medicine and object names
    ("en", "I ran out of my heart attack pills", "chest_pain", None),
    ("en", "need a refill on my stroke medicine", "stroke", None),
    ("en", "where's my inhaler", "breathing", None),
    ("es", "se me acabaron las pastillas para el infarto", "chest_pain", None),
    ("es", "necesito receta del inhalador", "breathing", None),
    # figures of speech
    ("en", "this heat is killing me", "suicide", None),
    ("en", "dying to see my grandkids", "suicide", None),
    ("es", "me muero de risa", "suicide", None),
    ("es", "me muero de ganas de verlos", "suicide", None),
    ("en", "i would rather die than sit through another meeting", "suicide", None),
    ("es", "me voy a morir de la risa con ustedes", "suicide", None),
    # everyday phrases that share words with a red flag
    ("en", "i cant talk right now, at work", "stroke", None),
    ("es", "mi hijo no me contesta el telefono", "unresponsive", None),
]


@pytest.mark.parametrize(("language", "text", "reason", "expected"), MODIFIERS)
def test_context_modifiers(triage: Triage, language: str, text: str, reason: str, expected: str | None) -> None:
    verdict = triage.assess(text, language)
    assert status_of(verdict, reason) == expected
    if expected is None:
        assert verdict.level != "EMERGENCY"


WRITING = [
    "MY CHEST HURTS",
    "chest is really hurting",
    "pain in my chest rn",
    "bad pian in my chest",
    "cant brethe",
    "Me duele el pecho 😰",
    "me duele el pecho ahorita",
    "me dolía el pecho y me sigue doliendo",
    "i cant breath!!!",
    "my chest hurtsss",
]


@pytest.mark.parametrize("text", WRITING)
def test_tolerates_how_people_text(triage: Triage, text: str) -> None:
    assert triage.assess(text).level == "EMERGENCY"


def test_every_matching_flag_fires_and_both_lines_are_said(triage: Triage) -> None:
    verdict = triage.assess("i want to die and my chest hurts")
    assert set(verdict.emergency) >= {"suicide", "chest_pain"}
    assert verdict.crisis_line
    es = triage.assess("quiero morirme y no puedo respirar", "es")
    assert set(es.emergency) >= {"suicide", "breathing"}
    assert es.crisis_line


def test_poison_control_and_crisis_line_for_overdoses(triage: Triage) -> None:
    intentional = triage.assess("took all my pills on purpose")
    assert "overdose" in intentional.emergency
    assert intentional.poison_control and intentional.crisis_line
    child = triage.assess("my grandson swallowed some of my pills")
    assert "overdose" in child.emergency
    assert child.poison_control and not child.crisis_line
    extra = triage.assess("i took my metformin twice by mistake")
    assert extra.confirm and extra.to_confirm == ("overdose",) and extra.poison_control


def test_symptoms_are_reported_without_an_emergency(triage: Triage) -> None:
    verdict = triage.assess("my ankles are swollen and i feel dizzy")
    assert verdict.level == "URGENT"
    assert {"swelling", "dizziness"} <= set(verdict.symptoms)
    assert not verdict.confirm
    assert triage.assess("weight 182").level is None
    assert triage.assess("si").level is None


def test_to_json_shape(triage: Triage) -> None:
    assert triage.assess("chest pain is gone now").to_json() == {
        "level": "URGENT",
        "reasons": ["chest_pain", "pain"],
        "confirm": True,
        "crisis_line": False,
    }
    data = triage.assess("quiero morir").to_json()
    assert data["level"] == "EMERGENCY" and data["reasons"][0] == "suicide" and data["crisis_line"] is True
    assert triage.assess("").to_json() == {"level": None, "reasons": [], "confirm": False, "crisis_line": False}


def test_findings_carry_the_matched_words(triage: Triage) -> None:
    (finding,) = [f for f in triage.assess("my CHEST is really hurting").findings if f.reason == "chest_pain"]
    assert finding.evidence == "chest is really hurting"


def test_the_language_is_only_a_hint(triage: Triage) -> None:
    assert triage.assess("me duele el pecho", "en").level == "EMERGENCY"
    assert triage.assess("my chest duele mucho", "es").level == "EMERGENCY"


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "?!?!", "a" * 2000, "1 2 3 4 5 6", "\n\n"])
def test_any_text_gives_a_verdict(triage: Triage, text: str) -> None:
    assert isinstance(triage.assess(text), Verdict)


# Gaps found with messages nobody had seen (issue 7): each kind of fault, worded differently from the report.
UNSEEN_KINDS = [
    # all of one's pills at once, first person and caregiver, en and es: overdose with 988 and Poison Control
    ("i swallowed all of my sleeping pills", "overdose", "current"),
    ("grandpa took all his meds at once and now hes really drowsy", "overdose", "current"),
    ("me trague todas mis pildoras", "overdose", "current"),
    # ... but a daily dose taken as prescribed is adherence
    ("yep took all my meds for today", "overdose", None),
    ("ya me tome todas mis medicinas de la manana", "overdose", None),
    # weariness of life, texting shortcuts and euphemisms: 988
    ("honestly im sick of living like this", "suicide", "current"),
    ("ya estoy harta de la vida", "suicide", "current"),
    ("me canse de existir", "suicide", "current"),
    ("ya no soporto esta vida", "suicide", "current"),
    ("might just kms tonight", "suicide", "current"),
    ("im going to kys", "suicide", "current"),
    ("thinking about unaliving myself", "suicide", "current"),
    # jaw, or left arm or shoulder pain alone: ask (AHA); with another cardiac sign: 911
    ("my jaw has been aching all afternoon", "chest_pain", "confirm"),
    ("dolor en el hombro izquierdo", "chest_pain", "confirm"),
    ("my left arm hurts and im clammy", "chest_pain", "current"),
    ("my back hurts from gardening", "chest_pain", None),
    # a number under 70 with confusion and no word for sugar: ask about low sugar
    ("52 and feeling confused", "severe_hypoglycemia", "confirm"),
    ("marca 38 y esta confundida", "severe_hypoglycemia", "confirm"),
    ("i walked 30 minutes today", "severe_hypoglycemia", None),
    # breathless only lying flat (orthopnoea) or through a blocked nose: not 911
    ("he can't breathe good when he lays flat", "breathing", None),
    ("no puede respirar bien si se acuesta", "breathing", None),
    ("my nose is so stuffy i cant breathe", "breathing", None),
    ("no puedo respirar por la nariz", "breathing", None),
    ("i cant breathe even when i lay down", "breathing", "current"),
    # Spanish "si" as "if" in a question, or in reported advice; "sí" and "si," are yes
    ("si me falta el aire voy a urgencias?", "breathing", None),
    ("me dijeron que si me da dolor en el pecho vaya al hospital", "chest_pain", None),
    ("sí, tengo dolor de pecho", "chest_pain", "current"),
    ("si, no puedo respirar", "breathing", "current"),
    # "would never" negates what follows
    ("i would never take my own life", "suicide", None),
    ("I will never hurt myself, dont worry", "suicide", None),
]


@pytest.mark.parametrize(("text", "reason", "expected"), UNSEEN_KINDS)
def test_unseen_kinds_of_wording(triage: Triage, text: str, reason: str, expected: str | None) -> None:
    assert status_of(triage.assess(text), reason) == expected


def test_unseen_kinds_say_the_right_lines(triage: Triage) -> None:
    overdose = triage.assess("she took all her pills")
    assert overdose.poison_control and overdose.crisis_line
    orthopnoea = triage.assess("i cant breathe well lying down so i sleep in the recliner")
    assert orthopnoea.level == "URGENT" and "shortness_of_breath" in orthopnoea.symptoms
    assert triage.assess("i would never hurt myself").level is None
    headache = triage.assess("me duele mucho la cabeza")
    assert not headache.emergency and not headache.to_confirm


# Review of 2026-11-30: violence from another person, passive wishes to give up, a Spanish head strike.
REVIEW = [
    # hit, hurt or afraid of a partner or family member, not safe at home: asked about, same day (URGENT)
    ("my husband hits me and I am scared", "interpersonal_violence", "confirm"),
    ("my girlfriend slapped me again today", "interpersonal_violence", "confirm"),
    ("I am not safe at home", "interpersonal_violence", "confirm"),
    ("i dont feel safe in my house", "interpersonal_violence", "confirm"),
    ("mi esposo me pega y tengo miedo", "interpersonal_violence", "confirm"),
    ("mi hijo me maltrata", "interpersonal_violence", "confirm"),
    ("my husband is abusive", "interpersonal_violence", "confirm"),
    ("mi hijo se pone agresivo conmigo", "interpersonal_violence", "confirm"),
    ("my son pushed me and took my money", "interpersonal_violence", "confirm"),
    ("no me siento segura en mi casa", "interpersonal_violence", "confirm"),
    # imminent danger: a threat to kill, strangulation, a weapon, the person here now (911)
    ("he says he will kill me", "interpersonal_violence", "current"),
    ("my boyfriend choked me last night", "interpersonal_violence", "current"),
    ("my ex pulled a knife on me", "interpersonal_violence", "current"),
    ("my husband beat me up and he is outside", "interpersonal_violence", "current"),
    ("me ahorcó mi pareja anoche", "interpersonal_violence", "current"),
    ("dijo que me iba a matar", "interpersonal_violence", "current"),
    # another person's threat to kill me is violence, not suicide
    ("mi pareja me amenazó con matarme", "interpersonal_violence", "current"),
    ("mi pareja me amenazó con matarme", "suicide", None),
    ("my partner threatened to kill me", "suicide", None),
    ("mi esposo dijo que va a matarme", "suicide", None),
    ("me voy a matar", "suicide", "current"),
    ("voy a matarme", "suicide", "current"),
    # figures of speech and ordinary pain are not violence
    ("este trafico me va a matar", "interpersonal_violence", None),
    ("my wife will kill me if I eat cake", "interpersonal_violence", None),
    ("el sol me pega fuerte", "interpersonal_violence", None),
    ("my knee hurts me", "interpersonal_violence", None),
    # passive wishes to give up or vanish: asked about (988), a habit given up is not
    ("I feel like giving up", "suicide", "confirm"),
    ("im homeless and i feel like giving up", "suicide", "confirm"),
    ("some days i just want to give up", "suicide", "confirm"),
    ("ya me quiero rendir", "suicide", "confirm"),
    ("mejor desaparecer", "suicide", "confirm"),
    ("I feel like giving up smoking", "suicide", None),
    ("I gave up sugar last month", "suicide", None),
    ("no me rindo", "suicide", None),
    # a fall with a blow to the head, en and es, with and without accents: asked about today
    ("I fell and hit my head", "head_injury", "confirm"),
    ("me caí y me pegué en la cabeza", "head_injury", "confirm"),
    ("me cai y me pegue en la cabeza", "head_injury", "confirm"),
    ("se cayo y se golpeo la cabeza", "head_injury", "confirm"),
    ("bumped my head on the cabinet", "head_injury", None),
]


@pytest.mark.parametrize(("text", "reason", "expected"), REVIEW)
def test_review_violence_giving_up_head_strike(triage: Triage, text: str, reason: str, expected: str | None) -> None:
    assert status_of(triage.assess(text), reason) == expected, triage.assess(text).to_json()
