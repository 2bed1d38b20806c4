"""Prompt templates render declared variables only, and put the release's system message first."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidInputError, ManifestError
from relgate.manifest import PromptTemplate, ReleaseManifest


def T(system: str, template: str, variables: tuple[str, ...]) -> PromptTemplate:
    return PromptTemplate(ref="t", system=system, template=template, variables=variables)


def test_render_both_placeholder_spellings_declared_names_only() -> None:
    t = T("S", '{a} and {{ b }} and {{b}} but not {c} or {"json": 1}', ("a", "b"))
    assert t.render({"a": "1", "b": "{c}"}) == '1 and {c} and {c} but not {c} or {"json": 1}'


def test_render_does_not_evaluate_format_fields() -> None:
    t = T("", "{input} {input.__class__} {0}", ("input",))
    assert t.render({"input": "x"}) == "x {input.__class__} {0}"


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="b"):
        T("", "{a}{b}", ("a", "b")).render({"a": "1"})


def test_bad_variable_names_are_refused() -> None:
    # Built in code, a template is a pydantic model: a ValueError naming the problem (a parsed
    # manifest turns the same problem into a ManifestError naming the field path).
    with pytest.raises(ValueError, match="should match pattern"):
        T("", "{x}", ("not-an-id",))
    with pytest.raises(ValueError, match="unique"):
        T("", "{a}", ("a", "a"))
    with pytest.raises(ValueError, match="does not appear"):
        T("", "no placeholder", ("a",))
    with pytest.raises(ManifestError, match=r"prompt_template: variables: names must be unique"):
        ReleaseManifest.parse(
            {
                "model": {"kind": "api", "provider": "p", "model": "m", "endpoint": "http://h/v1"},
                "prompt_template": {"ref": "t", "template": "{a}", "variables": ["a", "a"]},
                "routing": [{}],
                "dataset": {"ref": "s", "sha256": "ab" * 32},
                "previous_release": None,
            }
        )


def test_render_messages_wraps_last_user_message_and_prepends_system() -> None:
    t = T("You are a careful lawyer.", "[{domain}] Q: {question}", ("domain", "question"))
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
    t = T("", "{lang}: {input}", ("lang", "input"))
    assert (
        t.render_messages([{"role": "user", "content": "hi"}], {"lang": "fr"})[-1]["content"]
        == "fr: hi"
    )
    with pytest.raises(InvalidInputError, match="lang"):
        t.render_messages([{"role": "user", "content": "hi"}])


def test_template_without_a_user_variable_leads_the_user_text() -> None:
    t = T("", "Answer in {lang}.", ("lang",))
    out = t.render_messages([{"role": "user", "content": "hi"}], {"lang": "French"})
    assert out[-1]["content"] == "Answer in French.\n\nhi"
    fixed = T("", "Be brief.", ())
    assert (
        fixed.render_messages([{"role": "user", "content": "hi"}])[-1]["content"]
        == "Be brief.\n\nhi"
    )


def test_no_user_message_is_an_error() -> None:
    with pytest.raises(InvalidInputError):
        T("", "{input}", ("input",)).render_messages([{"role": "system", "content": "x"}])
    with pytest.raises(InvalidInputError):
        T("", "{input}", ("input",)).render_messages([{"role": "user", "content": 5}])
