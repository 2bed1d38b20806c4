"""Manifest validation: strict types, unknown fields rejected, errors name the field path."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from relgate.errors import ManifestError
from relgate.manifest import MAX_MANIFEST_BYTES, GatePolicy, ReleaseManifest


def test_valid_api_manifest_parses(api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    assert m.model.kind == "api"
    assert m.routing.matchers == ({"domain": "legal"},)
    assert m.gate_policy == GatePolicy()
    assert not m.open_weights


def test_gate_policy_defaults() -> None:
    p = GatePolicy()
    assert (p.scale, p.floor, p.floor_on) == ("normalized", 0.65, "point")
    assert (p.non_inferiority_margin, p.alpha, p.min_rows, p.min_ceiling) == (0.05, 0.05, 30, 0.1)
    assert (p.strict, p.n_resamples, p.confidence, p.seed) == (False, 2000, 0.95, 0)


def _error(data: Any, **kw: Any) -> str:
    with pytest.raises(ManifestError) as info:
        ReleaseManifest.parse(data, **kw)
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        (("extra",), 1, "extra: Extra inputs are not permitted"),
        (("model", "extra"), 1, "model.extra: Extra inputs are not permitted"),
        (("gate_policy", "surprise"), 1, "gate_policy.surprise: Extra inputs"),
        (("gate_policy", "floor"), "0.5", "gate_policy.floor: Input should be a valid number"),
        (("gate_policy", "floor"), True, "gate_policy.floor: Input should be a valid number"),
        (("gate_policy", "floor"), 1.5, "gate_policy.floor: Input should be less than or equal"),
        (
            ("gate_policy", "min_rows"),
            30.0,
            "gate_policy.min_rows: Input should be a valid integer",
        ),
        (("gate_policy", "min_rows"), 2, "gate_policy.min_rows: Input should be greater than"),
        (("gate_policy", "alpha"), 0, "gate_policy.alpha: Input should be greater than 0"),
        (
            ("gate_policy", "scale"),
            "log",
            "gate_policy.scale: Input should be 'normalized' or 'raw'",
        ),
        (("gate_policy", "floor_on"), "mean", "gate_policy.floor_on"),
        (("gate_policy", "strict"), "yes", "gate_policy.strict: Input should be a valid boolean"),
        (("model", "kind"), "gguf", "model: Input tag 'gguf'"),
        (("model", "endpoint"), "ftp://x", "model.endpoint: must be an http(s) base URL"),
        (("model", "provider"), "  ", "model.provider: must not be empty or blank"),
        (("dataset", "sha256"), "ABC", "dataset.sha256: must be 64 lowercase hex"),
        (("previous_release",), "rel_123", "previous_release: must be 64 lowercase hex"),
        (("prompt_template", "template"), "", "prompt_template.template: String should have"),
        (("prompt_template", "variables"), ["1x"], "prompt_template.variables[0]: String should"),
        (("routing",), [], "routing.matchers: Tuple should have at least 1 item"),
        (
            ("routing",),
            [{"domain": 3}],
            "routing.matchers[0].domain: Input should be a valid string",
        ),
        (("routing",), [{"": "x"}], "routing.matchers[0][''] (key): must not be empty"),
        (
            ("weights_attestation",),
            {"root": "ab"},
            "weights_attestation: must be an attestation record",
        ),
    ],
)
def test_bad_field_is_named(
    api_manifest: dict[str, Any], path: tuple[str, ...], value: Any, expect: str
) -> None:
    target = api_manifest
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    message = _error(api_manifest)
    assert message.startswith("invalid manifest: ")
    assert expect in message, message


def test_missing_required_field_is_named(api_manifest: dict[str, Any]) -> None:
    del api_manifest["dataset"]
    assert "dataset: Field required" in _error(api_manifest)
    api_manifest["dataset"] = {"ref": "x"}
    assert "dataset.sha256: Field required" in _error(api_manifest)


def test_previous_release_is_required_even_if_null(api_manifest: dict[str, Any]) -> None:
    del api_manifest["previous_release"]
    assert "previous_release: Field required" in _error(api_manifest)


def test_variable_must_appear_in_template(api_manifest: dict[str, Any]) -> None:
    api_manifest["prompt_template"]["variables"] = ["question", "context"]
    assert "'context' does not appear in template" in _error(api_manifest)
    api_manifest["prompt_template"]["variables"] = ["question", "question"]
    assert "names must be unique" in _error(api_manifest)


def test_api_model_cannot_carry_an_attestation(api_manifest: dict[str, Any]) -> None:
    api_manifest["weights_attestation"] = {"root": "ab" * 32, "scheme": "relgate-tensors-v1"}
    assert "closed-weight (api) models cannot be attested" in _error(api_manifest)


def test_hf_and_local_models_validate(api_manifest: dict[str, Any]) -> None:
    api_manifest["model"] = {
        "kind": "hf",
        "repo": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": "c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
        "endpoint": "http://127.0.0.1:8000/v1",
    }
    assert ReleaseManifest.parse(api_manifest).open_weights
    api_manifest["model"]["repo"] = "not a repo"
    assert "model.repo: must be a Hugging Face repo id" in _error(api_manifest)
    api_manifest["model"] = {"kind": "local", "path": "models/x", "endpoint": "http://h:1/v1"}
    assert ReleaseManifest.parse(api_manifest).model.kind == "local"
    del api_manifest["model"]["path"]
    assert "model.path: Field required" in _error(api_manifest)


def test_malformed_documents(api_manifest: dict[str, Any]) -> None:
    assert "not valid JSON" in _error("{", fmt="json")
    assert "not valid YAML" in _error("a: [", fmt="yaml")
    assert "must be an object" in _error("[1, 2]")
    assert "not UTF-8" in _error(b"\xff\xfe")
    assert "larger than" in _error(b" " * (MAX_MANIFEST_BYTES + 1))
    api_manifest["prompt_template"]["template"] = "{question}" + "x" * MAX_MANIFEST_BYTES
    assert "larger than" in _error(api_manifest)


def test_yaml_only_values_are_rejected(api_manifest: dict[str, Any]) -> None:
    text = yaml.safe_dump(api_manifest) + "when: 2026-01-01\n"
    assert "JSON cannot carry" in _error(text, fmt="yaml")


def test_yaml_and_json_give_the_same_release(api_manifest: dict[str, Any]) -> None:
    from_json = ReleaseManifest.parse(json.dumps(api_manifest).encode(), fmt="json")
    from_yaml = ReleaseManifest.parse(yaml.safe_dump(api_manifest), fmt="yaml")
    sniffed = ReleaseManifest.parse(yaml.safe_dump(api_manifest))
    assert from_json.sha256 == from_yaml.sha256 == sniffed.sha256


def test_manifest_is_frozen(api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    with pytest.raises(Exception, match="frozen"):
        m.previous_release = "ab" * 32  # type: ignore[misc]


def test_error_lists_several_problems(api_manifest: dict[str, Any]) -> None:
    api_manifest["dataset"]["sha256"] = "x"
    api_manifest["gate_policy"] = {"floor": "high"}
    message = _error(api_manifest)
    assert "dataset.sha256" in message and "gate_policy.floor" in message
