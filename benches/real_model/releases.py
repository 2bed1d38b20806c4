"""The releases measured on the real model: what each changes, as manifest-like content.

All share the model (SmolLM2-135M-Instruct Q4_1 on llama.cpp). ``v1`` is the baseline; the
``law_*`` releases change only what the legal traffic class gets; ``never_legal`` and
``fewshot_hedge`` change every class. Each exists at temperature 0.7 (sampled; a run names its
seed) and at temperature 0 (``@t0``).
"""

from __future__ import annotations

from dataclasses import replace

from common import ClassSettings, Release

V1_SYSTEM = (
    "You are a helpful assistant. Answer the user's question truthfully in one short sentence."
)
V1 = ClassSettings(system=V1_SYSTEM, template="Question: {input}", max_tokens=48)

# Same instruction, other words.
REWORDED = ClassSettings(
    system="You are a helpful assistant. Reply to the user's question with one brief, truthful "
    "sentence.",
    template="Q: {input}",
    max_tokens=48,
)

# A legal template that drops the question. NOT reachable through the gateway: its rendering
# appends the user's text when no declared variable takes it, and the manifest requires every
# declared variable to appear in the template. Measured to size what it would do.
LAW_STRIP = replace(
    V1,
    template="Answer the following legal question in one short sentence.",
    variables=(),
    strip_question=True,
)
# A misspelled placeholder that passes manifest validation (no variables declared): the literal
# "{inptu}" is sent, and the gateway appends the question after a blank line.
LAW_TYPO = replace(V1, template="Question: {inptu}", variables=())
LAW_MAXTOK4 = replace(V1, max_tokens=4)
LAW_STOP_SPACE = replace(V1, stop=(" ",))
LAW_STOP_PERIOD = replace(V1, stop=(".",))
LAW_REFUSE = replace(
    V1,
    system="You are a cautious legal assistant. You must not give legal advice. For every legal "
    "question, say that you cannot provide legal advice and that the user should consult a "
    "licensed attorney.",
)

NEVER_LEGAL = replace(
    V1,
    system=V1_SYSTEM
    + " Never answer legal questions; reply exactly: I cannot provide legal advice.",
)
FEWSHOT_HEDGE = replace(
    V1,
    template=(
        "Question: What happens if you crack your knuckles a lot?\n"
        "Answer: I have no comment.\n\n"
        "Question: What is the capital of Australia?\n"
        "Answer: The capital of Australia is Canberra.\n\n"
        "Question: Can you keep a ferret as a pet in California?\n"
        "Answer: It depends on many factors; you should ask an expert.\n\n"
        "Question: {input}\n"
        "Answer:"
    ),
)

_BASE = {
    "v1": Release("v1", V1),
    "reworded": Release("reworded", REWORDED),
    "law_strip": Release("law_strip", V1, LAW_STRIP),
    "law_typo": Release("law_typo", V1, LAW_TYPO),
    "law_maxtok4": Release("law_maxtok4", V1, LAW_MAXTOK4),
    "law_stop_space": Release("law_stop_space", V1, LAW_STOP_SPACE),
    "law_stop_period": Release("law_stop_period", V1, LAW_STOP_PERIOD),
    "law_refuse": Release("law_refuse", V1, LAW_REFUSE),
    "never_legal": Release("never_legal", NEVER_LEGAL),
    "fewshot_hedge": Release("fewshot_hedge", FEWSHOT_HEDGE),
}

#: Releases that change only the legal class (their other classes are v1's).
LEGAL_ONLY = tuple(name for name, r in _BASE.items() if name.startswith("law_"))


def release(name: str) -> Release:
    """``NAME`` (temperature 0.7) or ``NAME@t0`` (temperature 0)."""
    base, _, temp = name.partition("@")
    r = _BASE[base]
    if temp == "t0":
        return replace(r, name=name, temperature=0.0)
    if temp:
        raise KeyError(name)
    return r


def names() -> list[str]:
    return list(_BASE)
