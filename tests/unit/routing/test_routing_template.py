"""Prompt templates render declared variables only, and put the release's system message first."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidInputError, ManifestError
from relgate.routing import PromptTemplate


def test_render_both_placeholder_spellings_declared_names_only() -> None:
    t = PromptTemplate("S", '{a} and {{ b }} and {{b}} but not {c} or {"json": 1}', ("a", "b"))
    assert t.render({"a": "1", "b": "{c}"}) == '1 and {c} and {c} but not {c} or {"json": 1}'


def test_render_does_not_evaluate_format_fields() -> None:
    t = PromptTemplate("", "{input} {input.__class__} {0}", ("input",))
    assert t.render({"input": "x"}) == "x {input.__class__} {0}"


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="b"):
        PromptTemplate("", "{a}{b}", ("a", "b")).render({"a": "1"})


def test_bad_variable_names_are_manifest_errors() -> None:
    with pytest.raises(ManifestError):
        PromptTemplate("", "", ("not-an-id",))
    with pytest.raises(ManifestError):
        PromptTemplate("", "", ("a", "a"))


def test_render_messages_wraps_last_user_message_and_prepends_system() -> None:
    t = PromptTemplate(
        "You are a careful lawyer.", "[{domain}] Q: {question}", ("domain", "question")
    )
    msgs = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Is it "}, {"type": "text", "text": "legal?"}],
        },
    ]
    out = t.render_messages(msgs, {"domain": "law", "slice": "Law"})
    assert out[0] == {"role": "system", "content": "You are a careful lawyer."}
    assert out[1] == {"role": "user", "content": "earlier"}
    assert out[-1] == {"role": "user", "content": "[law] Q: Is it legal?"}
    # The client's list is untouched.
    assert msgs[0] == {"role": "user", "content": "earlier"}


def test_input_variable_takes_the_user_text() -> None:
    t = PromptTemplate("", "{lang}: {input}", ("lang", "input"))
    assert (
        t.render_messages([{"role": "user", "content": "hi"}], {"lang": "fr"})[-1]["content"]
        == "fr: hi"
    )
    with pytest.raises(InvalidInputError, match="lang"):
        t.render_messages([{"role": "user", "content": "hi"}])


def test_template_without_a_user_variable_leads_the_user_text() -> None:
    t = PromptTemplate("", "Answer in {lang}.", ("lang",))
    out = t.render_messages([{"role": "user", "content": "hi"}], {"lang": "French"})
    assert out[-1]["content"] == "Answer in French.\n\nhi"
    fixed = PromptTemplate("", "Be brief.", ())
    assert (
        fixed.render_messages([{"role": "user", "content": "hi"}])[-1]["content"]
        == "Be brief.\n\nhi"
    )


def test_no_user_message_is_an_error() -> None:
    with pytest.raises(InvalidInputError):
        PromptTemplate("", "{input}", ("input",)).render_messages(
            [{"role": "system", "content": "x"}]
        )
    with pytest.raises(InvalidInputError):
        PromptTemplate("", "{input}", ("input",)).render_messages([{"role": "user", "content": 5}])
