"""Shared pieces of the real-model measurements (SmolLM2-135M-Instruct on llama.cpp, CPU).

- the suite subset the measurements run on;
- releases as manifest-like content: a default traffic class and an optional override for the
  legal class (template, system message, max_tokens, stop), rendered exactly as the gateway
  renders a release's template (``relgate.routing.PromptTemplate.render_messages``);
- answering a suite through a real server, one request per item, with a per-request sampling
  seed derived from (run seed, item id) so a run is reproducible and order-independent;
- a coarse answer classifier (hedge/refusal, empty, short) and machine-load snapshots, since
  every timing here was taken on a 2-core VM shared with other work.

Run everything with the worktree on the path:
    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/<script>.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relgate.canonical import canonical_json, sha256_hex
from relgate.data import demo_calibration_answers_path, demo_suite_path
from relgate.engines import chat
from relgate.routing import PromptTemplate
from relgate.suite import Suite, load_suite

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ANSWERS = DATA / "answers"

#: The five biggest TruthfulQA slices (Law included) plus one small one.
SUBSET = ("Misconceptions", "Law", "Health", "Sociology", "Economics", "Science")
LEGAL_SLICE = "Law"


# ---- machine state ----------------------------------------------------------------------------


def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def busy_others(top: int = 4) -> list[str]:
    """The processes using most CPU right now, other than ours (for the record)."""
    out = os.popen("ps -eo pcpu,comm --sort=-pcpu | head -n 12").read().splitlines()[1:]
    mine = {"python", "python3"}
    rows = [line.strip() for line in out if line.split()[-1] not in mine]
    return rows[:top]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": cpu, "loadavg": loadavg(), "busy": busy_others()}


# ---- suite ------------------------------------------------------------------------------------


def subset_suite(slices: Sequence[str] = SUBSET) -> Suite:
    """The demo suite restricted to ``slices``."""
    return load_suite(demo_suite_path()).select_slices(list(slices))


def best_answers() -> dict[str, str]:
    """TruthfulQA's held-out best answers (calibration's good answers)."""
    out = {}
    with demo_calibration_answers_path().open() as fh:
        for line in fh:
            row = json.loads(line)
            out[row["item_id"]] = row["answer"]
    return out


# ---- releases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassSettings:
    """What a release applies to one traffic class."""

    system: str
    template: str
    variables: tuple[str, ...] = ("input",)
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    #: Bypass the gateway's rendering and send the template without the question (the gateway
    #: cannot do this: measured only to size the damage of a context-stripping template).
    strip_question: bool = False

    def prompt_template(self) -> PromptTemplate:
        return PromptTemplate(system=self.system, template=self.template, variables=self.variables)

    def messages(self, question: str, attrs: Mapping[str, str]) -> list[dict[str, Any]]:
        """Chat messages for one question, as the gateway renders them."""
        if self.strip_question:
            msgs: list[dict[str, Any]] = [{"role": "user", "content": self.template}]
            if self.system:
                msgs.insert(0, {"role": "system", "content": self.system})
            return msgs
        return self.prompt_template().render_messages(
            [{"role": "user", "content": question}], dict(attrs)
        )


@dataclass(frozen=True)
class Release:
    """Manifest-like content of a release: the default class and an optional legal override.

    ``temperature`` is part of the content; the sampling seed of a run is not (an A/A pair is
    the same content answered with another seed).
    """

    name: str
    default: ClassSettings
    legal: ClassSettings | None = None
    temperature: float = 0.7

    def settings_for(self, slice_name: str) -> ClassSettings:
        if slice_name == LEGAL_SLICE and self.legal is not None:
            return self.legal
        return self.default

    def content(self) -> dict[str, Any]:
        """What would be hashed (the name is a label, not content)."""
        body = asdict(self)
        del body["name"]
        return body

    @property
    def sha256(self) -> str:
        return sha256_hex(canonical_json(self.content()))


def traffic_attrs(slice_name: str) -> dict[str, str]:
    """The request labels a client would send (the legal class is ``domain=legal``)."""
    return {"domain": "legal" if slice_name == LEGAL_SLICE else "general", "slice": slice_name}


def request_seed(run_seed: int, item_id: str) -> int:
    """Per-request sampling seed: reproducible per (run, item), independent of order."""
    digest = hashlib.sha256(f"{run_seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# ---- answering --------------------------------------------------------------------------------


@dataclass
class Answer:
    item_id: str
    slice: str
    answer: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    seed: int | None


@dataclass
class Run:
    """One release answering a set of items with one seed."""

    release: str
    release_sha256: str
    temperature: float
    seed: int
    answers: list[Answer] = field(default_factory=list)
    wall_s: float = 0.0
    machine_before: dict[str, Any] = field(default_factory=dict)
    machine_after: dict[str, Any] = field(default_factory=dict)

    def texts(self) -> dict[str, str]:
        return {a.item_id: a.answer for a in self.answers}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {k: v for k, v in asdict(self).items() if k != "answers"}
        with path.open("w") as fh:
            fh.write(json.dumps({"meta": meta}) + "\n")
            for a in sorted(self.answers, key=lambda a: a.item_id):
                fh.write(json.dumps(asdict(a)) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Run:
        lines = path.read_text().splitlines()
        meta = json.loads(lines[0])["meta"]
        run = cls(**meta)
        run.answers = [Answer(**json.loads(line)) for line in lines[1:]]
        return run


def answer_items(
    base_url: str,
    model: str,
    release: Release,
    items: Iterable[tuple[str, str, str]],
    *,
    seed: int,
    concurrency: int = 1,
    timeout_s: float = 300.0,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Answer ``(item_id, slice, prompt)`` items through the server, one request each."""
    run = Run(release.name, release.sha256, release.temperature, seed)
    items = list(items)
    lock = threading.Lock()
    done = 0

    def one(item: tuple[str, str, str]) -> Answer:
        nonlocal done
        item_id, slice_name, prompt = item
        cls = release.settings_for(slice_name)
        params: dict[str, Any] = {
            "max_tokens": cls.max_tokens,
            "temperature": release.temperature,
        }
        req_seed = None
        if release.temperature > 0:
            req_seed = request_seed(seed, item_id)
            params["seed"] = req_seed
        if cls.stop:
            params["stop"] = list(cls.stop)
        t0 = time.perf_counter()
        reply = chat(
            base_url,
            model,
            cls.messages(prompt, traffic_attrs(slice_name)),
            timeout_s=timeout_s,
            **params,
        )
        ans = Answer(
            item_id,
            slice_name,
            reply.text.strip(),
            reply.finish_reason,
            reply.prompt_tokens,
            reply.completion_tokens,
            time.perf_counter() - t0,
            req_seed,
        )
        with lock:
            done += 1
            if progress is not None:
                progress(done)
        return ans

    run.machine_before = machine()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        run.answers = list(pool.map(one, items))
    run.wall_s = time.perf_counter() - t0
    run.machine_after = machine()
    return run


def suite_items(suite: Suite, slices: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """(item_id, slice, prompt) for every item of the suite (optionally only some slices)."""
    prompts = suite.prompts()
    slice_of = suite.slice_of()
    return [
        (i, slice_of[i], prompts[i])
        for i in suite.item_ids
        if slices is None or slice_of[i] in slices
    ]


# ---- answer classes ---------------------------------------------------------------------------

_HEDGE = re.compile(
    r"\b(i (cannot|can't|can not|am unable|'m unable|am not able|'m not able|do not|don't) "
    r"(provide|give|offer|answer|help|assist|comment)|legal advice|no comment|"
    r"consult (a|an|with|your)|seek (professional|legal|the advice)|"
    r"i'?m sorry|i am sorry|as an ai|not a lawyer|it depends on|i don'?t know|"
    r"i'?m not sure|i am not sure|qualified (attorney|lawyer|professional)|licensed attorney)",
    re.IGNORECASE,
)


def answer_class(text: str) -> str:
    """``empty``, ``hedge`` (refusal, hedge, referral), ``short`` (<= 2 words) or ``answer``."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if _HEDGE.search(stripped):
        return "hedge"
    if len(stripped.split()) <= 2:
        return "short"
    return "answer"


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")
    return path
