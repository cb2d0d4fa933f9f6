"""Red-flag triage on the blind sets (written before the component was read) and the general rules their misses
led to: each rule is checked on wordings that are in none of the labeled files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.triage import Triage, load_triage
from app.triage.evaluation import evaluate, parse_rows
from app.triage.matcher import sound

ROOT = Path(__file__).resolve().parents[2]
BLIND = [Path(__file__).with_name(name) for name in ("triage_blind.tsv", "triage_blind2.tsv", "triage_blind3.tsv")]


@pytest.fixture(scope="module")
def triage() -> Triage:
    return load_triage(ROOT / "content" / "triage", ROOT)


@pytest.mark.parametrize("path", BLIND, ids=lambda p: p.name)
def test_targets_on_the_blind_sets(triage: Triage, path: Path) -> None:
    report = evaluate(triage, parse_rows(path.read_text(encoding="utf-8").splitlines(), str(path)))
    assert report.rows >= 100
    assert report.meets_targets, [(row.text, verdict.to_json()) for row, verdict in report.misses]


def level(triage: Triage, text: str) -> str | None:
    verdict = triage.assess(text)
    if verdict.emergency:
        return "EMERGENCY"
    return "CONFIRM" if verdict.confirm else None


RULES = [
    # a trigger standing in a pattern's gap modifies it; the phrase's own "no" plus "nada" is one negation
    ("my chest is not really hurting", None),
    ("el pecho ya no me duele", "CONFIRM"),
    ("no le entra nada de aire", "EMERGENCY"),
    ("his chest will not quit hurting", "EMERGENCY"),
    # laughter asks instead of alarming, except for suicide (988: every mention is taken seriously)
    ("my chest is killing me haha", "CONFIRM"),
    ("i want to die lmao", "EMERGENCY"),
    # spellings by ear (Spanish texting)
    ("kiere morirse", "EMERGENCY"),
    ("se esta aogando", "EMERGENCY"),
    # "with the new medicine" names a cause, not a "heart pills" object
    ("le duele el pecho con la medicina nueva", "EMERGENCY"),
    ("my chest hurts after the new pill", "EMERGENCY"),
    ("necesito las pastillas de los ataques", None),
    # "que" alone is no terminator: the relative clause keeps the past
    ("el infarto que le dio en 2018", None),
    # Spanish perfect tense: "no he" is a negation, not the English reply "No, he..."
    ("no he tenido ganas de matarme", None),
    ("No he can not breathe", "EMERGENCY"),
    # scheduled doses are not double doses
    ("me toca la insulina dos veces al dia", None),
    ("took my insulin twice by mistake and now i am so drowsy", "EMERGENCY"),
    # reported suicidal talk, past self-harm with intent to repeat
    ("my son was talking about hurting himself", "EMERGENCY"),
    ("me corte las venas hace un mes y voy a volver a hacerlo", "EMERGENCY"),
    # a child named by age; vision in one eye
    ("my 4 yr old swallowed some of my pills", "EMERGENCY"),
    ("all of a sudden my right eye went black", "EMERGENCY"),
    ("blurry in my left eye since the drops", "CONFIRM"),
    # third blind set: voice-to-text homophones and split words
    ("chess pains all night", "EMERGENCY"),
    ("i won at chess, my knee is a pain", None),
    ("im getting short of breast just sitting here", "EMERGENCY"),
    # images of a weight on the chest, in any order; Spanish stem-changing verbs (apretar -> aprieta)
    ("feels like a ton of bricks on my chest", "EMERGENCY"),
    ("le aprieta el pecho a mi papa", "EMERGENCY"),
    # where the discomfort is, asked about
    ("no se si es el pecho o la panza", "CONFIRM"),
    # severity words make trouble breathing the red zone; "not [have trouble] breathing" is no "not breathing"
    ("breathing really bad tonight", "EMERGENCY"),
    ("me cuesta respirar bien feo", "EMERGENCY"),
    ("he does not have any trouble breathing", None),
    ("im using my nebulizer more often these days", "CONFIRM"),
    # sudden vision loss in one eye, however ordered
    ("suddenly blurry vision in my left eye", "EMERGENCY"),
    # means beside readiness; religious and heaven euphemisms of a wish to die; "volver a" + self-harm
    ("the meds are all counted, i am ready", "EMERGENCY"),
    ("i have my pills lined up in the organizer", None),
    ("lord take me home already", "EMERGENCY"),
    ("que diosito me lleve ya", "EMERGENCY"),
    ("gracias a dios estoy bien", None),
    ("i just want to be with my husband in heaven", "EMERGENCY"),
    ("ya no le encuentro sentido a la vida", "EMERGENCY"),
    ("se volvio a cortar mi hija", "EMERGENCY"),
    # remote suicide history is asked about, not dropped (988, C-SSRS)
    ("tried to overdose in 2019, doing ok now", "CONFIRM"),
    # a lot of coughed-up blood earlier today is still an emergency; a little yesterday is asked about
    ("coughed up a cup of blood this morning", "EMERGENCY"),
    ("coughed up a lot of blood yesterday, fine today", "CONFIRM"),
    # a blow to the head: danger signs make it an emergency, a blood thinner alone asks
    ("grandpa slipped and banged his head, hes on warfarin", "CONFIRM"),
    ("se pego en la cabeza y esta vomitando", "EMERGENCY"),
    ("my mom fell yesterday and hit her head, today she is very sleepy", "EMERGENCY"),
    ("bumped my head on the cabinet", None),
    # low sugar with any altered state, "don't know" written with "do"
    ("sugar 45 and she dont know who i am", "EMERGENCY"),
    # regional words for a faint or a collapse
    ("le dio el telele a mi abuela", "EMERGENCY"),
    ("el martes me dio un vahido", "CONFIRM"),
    ("se quedo tiesa en el sillon", "EMERGENCY"),
    # an ongoing bleed dated by "hace" is still going; the Spanish present progressive is now
    ("la nariz no deja de sangrar desde hace una hora, tomo xarelto", "EMERGENCY"),
    ("se me esta hinchando la lengua despues de comer nueces", "EMERGENCY"),
    # hypotheticals, ruled-out tests, jokes with laughing emoji, care after an event, sleep idioms, usage of an epipen
    ("si algun dia me falta el aire que hago", None),
    ("they ruled out a stroke at the ER", None),
    ("these kids will give me a stroke \U0001f602", None),
    ("got my epipen prescription renewed", None),
    ("had to use my epipen on my grandson, his lips are swelling", "EMERGENCY"),
    ("knocked out like a light after dinner", None),
    ("la terapia despues del infarto va bien", None),
    # real words are not typos of red-flag words
    ("i cooked dinner and now im looking for my glasses", None),
    ("my store is having a sale", None),
    ("i blacked out the names on the form", None),
]


@pytest.mark.parametrize(("text", "expected"), RULES)
def test_general_rules(triage: Triage, text: str, expected: str | None) -> None:
    assert level(triage, text) == expected, triage.assess(text).to_json()


def test_sound_key_joins_spellings_by_ear() -> None:
    assert sound("kiero") == sound("quiero")
    assert sound("desmalle") == sound("desmaye")
    assert sound("convulcion") == sound("convulsion")
    assert sound("pecho") != sound("peso")
