"""A release's answers to a suite's prompts, each with its sha256.

Sources: a recorded-outputs file (JSONL, parquet or CSV with columns ``item_id`` and
``answer``), or generated from chat messages (each item rendered by the release, with
``ReleaseManifest.render_prompt``: the same function the gateway renders live traffic with, so
an item of the legal slice gets the legal class's template and settings): the release's
OpenAI-compatible endpoint (bounded concurrency, retries with backoff, timeouts, a seed on every
request), a local transformers model, or an in-process vLLM engine (imported lazily; GPU).
``generation`` carries the release's settings (``temperature``, ``max_tokens``, ``top_p``,
``stop``, ``seed``); without them answers are greedy.

``Answers.sha256`` is SHA-256 over the sorted RFC 8785 JSON lines ``{"answer", "item_id"}``, so
the same answers from any source or order have the same identity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from relgate.canonical import jsonl_sha256, text_sha256
from relgate.errors import InvalidInputError, JudgeError, NotFoundError
from relgate.judge.base import import_backend
from relgate.prompt import Rendered, request_seed

__all__ = [
    "DEFAULT_GENERATION",
    "Answers",
    "Messages",
    "endpoint_request",
    "from_endpoint",
    "from_transformers",
    "from_vllm",
    "load_answers",
]

Messages = Sequence[Mapping[str, str]]
#: One item's request: chat messages (the call's settings apply) or a release's rendering of
#: it (its settings win over the call's, field by field).
Request = Messages | Rendered
#: Settings of a release that names none: greedy, long enough for a sentence or two.
DEFAULT_GENERATION: Mapping[str, Any] = {"temperature": 0.0, "max_tokens": 256}


@dataclass(frozen=True)
class Answers(Mapping[str, str]):
    """item_id -> answer text, immutable, with per-answer and overall sha256."""

    texts: Mapping[str, str]
    source: str = ""
    sha256: str = field(init=False)
    answer_sha256: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        texts = dict(self.texts)
        for item, text in texts.items():
            if not isinstance(item, str) or not isinstance(text, str):
                raise InvalidInputError(f"answers: item {item!r} must map a string to a string")
        digest = jsonl_sha256({"answer": t, "item_id": i} for i, t in texts.items())
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "answer_sha256", {i: text_sha256(t) for i, t in texts.items()})

    def __getitem__(self, item: str) -> str:
        return self.texts[item]

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def require(self, item_ids: Sequence[str]) -> None:
        """Raise InvalidInputError naming the items that have no answer."""
        missing = [i for i in item_ids if i not in self.texts]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InvalidInputError(
                f"answers{f' ({self.source})' if self.source else ''}: no answer for "
                f"{len(missing)} suite item(s): {shown}"
            )

    def write(self, path: str | Path) -> Path:
        """Write as JSONL or parquet (by extension), sorted by item id."""
        path = Path(path)
        frame = pl.DataFrame(
            {"item_id": sorted(self.texts), "answer": [self.texts[i] for i in sorted(self.texts)]}
        )
        if path.suffix.lower() == ".parquet":
            frame.write_parquet(path)
        else:
            frame.write_ndjson(path)
        return path


def load_answers(path: str | Path) -> Answers:
    """Load recorded outputs (JSONL / parquet / CSV with ``item_id`` and ``answer``)."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"answers file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=0)
        else:
            raise InvalidInputError(f"answers: unknown format {suffix!r} (jsonl, parquet, csv)")
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(f"answers: {path} cannot be read: {exc}") from exc
    missing = [c for c in ("item_id", "answer") if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"answers: {path} is missing column(s) {', '.join(missing)}")
    if frame.schema["item_id"].is_integer():
        frame = frame.with_columns(pl.col("item_id").cast(pl.String))
    for name in ("item_id", "answer"):
        if frame.schema[name] == pl.Null:  # all null: reported below with its row
            frame = frame.with_columns(pl.col(name).cast(pl.String))
        if frame.schema[name] != pl.String:
            raise InvalidInputError(f"answers: column {name} must hold strings in {path}")
        nulls = frame[name].is_null()
        if nulls.any():
            row = int(nulls.arg_true()[0]) + 1
            raise InvalidInputError(f"answers: column {name} is null at row {row} of {path}")
    dup = frame["item_id"].is_duplicated()
    if dup.any():
        row = int(dup.arg_true()[0]) + 1
        raise InvalidInputError(
            f"answers: item_id {frame['item_id'][row - 1]!r} appears twice in {path} (row {row})"
        )
    texts = dict(zip(frame["item_id"].to_list(), frame["answer"].to_list(), strict=True))
    return Answers(texts, source=str(path))


def _settings(generation: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(DEFAULT_GENERATION)
    out.update({k: v for k, v in (generation or {}).items() if v is not None})
    return out


def _request(msgs: Request, generation: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields of one item: messages, settings, and always a seed (the release's
    per-request seed, else one derived from seed 0 and the messages) so a rerun repeats."""
    if isinstance(msgs, Rendered):
        messages = [dict(m) for m in msgs.messages]
        settings = {**generation, **msgs.generation}
    else:
        messages = [dict(m) for m in msgs]
        settings = dict(generation)
    if settings.get("seed") is None:
        settings["seed"] = request_seed(0, messages)
    return {"messages": messages, **settings}


def endpoint_request(msgs: Request, model: str) -> dict[str, Any]:
    """The chat-completion body :func:`from_endpoint` sends for one item (no generation
    settings of its own: the release's, over the defaults), seed included."""
    return {"model": model, **_request(msgs, _settings(None))}


async def _from_endpoint(
    messages: Mapping[str, Request],
    base_url: str,
    model: str,
    generation: Mapping[str, Any],
    concurrency: int,
    retries: int,
    timeout_s: float,
    api_key: str | None,
    on_done: Callable[[int, int], None] | None,
) -> dict[str, str]:
    from relgate.engines.http import auth_headers, post_json

    url = base_url.rstrip("/") + "/chat/completions"
    gate = asyncio.Semaphore(concurrency)
    done = [0]

    async def one(session: Any, item: str, msgs: Request) -> tuple[str, str]:
        body = {"model": model, **_request(msgs, generation)}
        data = await post_json(
            session,
            url,
            body,
            headers=auth_headers(api_key),
            retries=retries,
            timeout_s=timeout_s,
            gate=gate,
            first_delay_s=0.2,
        )
        try:
            text = str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise JudgeError(f"{url}: a chat completion without a message ({exc!r})") from exc
        done[0] += 1
        if on_done is not None:
            on_done(done[0], len(messages))
        return item, text

    import aiohttp

    async with aiohttp.ClientSession() as session:
        pairs = await asyncio.gather(*(one(session, i, m) for i, m in messages.items()))
    return dict(pairs)


def from_endpoint(
    messages: Mapping[str, Request],
    *,
    base_url: str,
    model: str,
    generation: Mapping[str, Any] | None = None,
    concurrency: int = 8,
    retries: int = 3,
    timeout_s: float = 60.0,
    api_key: str | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Answers:
    """Ask an OpenAI-compatible endpoint (``base_url`` ends in ``/v1``) to answer each item's
    request (chat messages, or a release's ``Rendered`` request whose settings win), with
    ``generation`` settings (greedy by default) and a seed on every request, at most
    ``concurrency`` requests in flight, each retried ``retries`` times on 5xx / 429 / network
    errors and bounded by ``timeout_s``. ``on_done(done, total)`` reports progress."""
    texts = asyncio.run(
        _from_endpoint(
            messages,
            base_url,
            model,
            _settings(generation),
            concurrency,
            retries,
            timeout_s,
            api_key,
            on_done,
        )
    )
    return Answers(texts, source=f"endpoint {base_url} model {model}")


def _chat_texts(tokenizer: Any, messages: Mapping[str, Messages]) -> list[str]:
    texts = []
    for msgs in messages.values():
        plain = [dict(m) for m in msgs]
        if getattr(tokenizer, "chat_template", None):
            texts.append(
                str(
                    tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
                )
            )
        else:  # a base model without a chat template gets the same words as plain text
            texts.append("\n\n".join(m["content"] for m in plain))
    return texts


def from_transformers(
    messages: Mapping[str, Messages],
    *,
    model: str,
    generation: Mapping[str, Any] | None = None,
    batch_size: int = 8,
    device: str | None = None,
) -> Answers:
    """Generate answers with a local transformers causal LM (path or cached repo; never
    downloaded: ``local_files_only``). Greedy unless ``generation`` sets a temperature."""
    torch = import_backend("torch", "transformers answers")
    transformers = import_backend("transformers", "transformers answers")
    settings = _settings(generation)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = transformers.AutoTokenizer.from_pretrained(
        model, local_files_only=True, padding_side="left"
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    lm = transformers.AutoModelForCausalLM.from_pretrained(model, local_files_only=True)
    lm = lm.to(device).eval()
    texts = _chat_texts(tok, messages)
    sample = float(settings.get("temperature") or 0.0) > 0.0
    if sample and settings.get("seed") is not None:
        torch.manual_seed(int(settings["seed"]))
    out: list[str] = []
    for start in range(0, len(texts), batch_size):
        batch = tok(texts[start : start + batch_size], return_tensors="pt", padding=True).to(device)
        with torch.inference_mode():
            gen = lm.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=int(settings["max_tokens"]),
                do_sample=sample,
                temperature=float(settings["temperature"]) if sample else None,
                top_p=settings.get("top_p") if sample else None,
                pad_token_id=tok.pad_token_id,
            )
        new = gen[:, batch["input_ids"].shape[1] :]
        out.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
    return Answers(dict(zip(messages.keys(), out, strict=True)), source=f"transformers {model}")


def from_vllm(
    messages: Mapping[str, Messages],
    *,
    model: str,
    generation: Mapping[str, Any] | None = None,
    **engine_args: Any,
) -> Answers:
    """Generate answers with an in-process vLLM engine (GPU; ``pip install 'relgate[gpu]'``)
    with the release's ``generation`` settings (greedy by default)."""
    vllm = import_backend("vllm", "vLLM answers")
    settings = _settings(generation)
    llm = vllm.LLM(model=model, **engine_args)
    texts = _chat_texts(llm.get_tokenizer(), messages)
    params = vllm.SamplingParams(
        temperature=float(settings["temperature"]),
        max_tokens=int(settings["max_tokens"]),
        top_p=float(settings.get("top_p") or 1.0),
        stop=settings.get("stop"),
        seed=settings.get("seed"),
    )
    results = llm.generate(texts, params)
    out = [r.outputs[0].text.strip() for r in results]
    return Answers(dict(zip(messages.keys(), out, strict=True)), source=f"vllm {model}")
