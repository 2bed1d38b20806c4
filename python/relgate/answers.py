"""A release's answers to a suite's prompts, each with its sha256.

Sources: a recorded-outputs file (JSONL, parquet or CSV with columns ``item_id`` and
``answer``), the release's OpenAI-compatible endpoint (chat completions with the release's prompt
template applied; bounded concurrency, retries with backoff, timeouts), a local transformers
model, or an in-process vLLM engine (imported lazily; GPU).

``Answers.sha256`` is SHA-256 over the sorted RFC 8785 JSON lines ``{"answer", "item_id"}``, so
the same answers from any source or order have the same identity.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import rfc8785

from relgate.errors import InvalidInputError, JudgeUnavailableError, NotFoundError, RelgateError
from relgate.judge.base import import_backend

__all__ = [
    "Answers",
    "from_endpoint",
    "from_transformers",
    "from_vllm",
    "load_answers",
    "render_prompt",
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        lines = sorted(rfc8785.dumps({"answer": t, "item_id": i}) + b"\n" for i, t in texts.items())
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "sha256", hashlib.sha256(b"".join(lines)).hexdigest())
        object.__setattr__(self, "answer_sha256", {i: _sha(t) for i, t in texts.items()})

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


def render_prompt(
    template: str, prompt: str, *, variable: str = "question", system: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for one item: the release's template with ``{variable}`` set to the
    suite prompt, after the release's system message if it has one."""
    try:
        user = template.format_map({variable: prompt})
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError(
            f"prompt template needs variables other than {variable!r}: {exc}"
        ) from exc
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


async def _complete(
    session: Any,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    retries: int,
    timeout_s: float,
) -> str:
    import aiohttp

    delay = 0.2
    for attempt in range(retries + 1):
        try:
            async with session.post(
                url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                if resp.status == 200:
                    data = await resp.json()
                    return str(data["choices"][0]["message"]["content"] or "")
                # Client errors other than rate limits will not improve on retry.
                if resp.status < 500 and resp.status != 429:
                    raise RelgateError(f"endpoint {url}: HTTP {resp.status}: {await resp.text()}")
                reason = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, KeyError, IndexError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            await asyncio.sleep(delay * (1.0 + random.random()))
            delay *= 2
    raise JudgeUnavailableError(f"endpoint {url}: no answer after {retries + 1} tries ({reason})")


async def _from_endpoint(
    prompts: Mapping[str, str],
    base_url: str,
    model: str,
    template: str,
    variable: str,
    system: str | None,
    concurrency: int,
    retries: int,
    timeout_s: float,
    max_tokens: int,
    api_key: str | None,
) -> dict[str, str]:
    import aiohttp

    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    gate = asyncio.Semaphore(concurrency)

    async def one(session: Any, item: str, prompt: str) -> tuple[str, str]:
        body = {
            "model": model,
            "messages": render_prompt(template, prompt, variable=variable, system=system),
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        async with gate:
            text = await _complete(
                session, url, body, headers, retries=retries, timeout_s=timeout_s
            )
        return item, text

    async with aiohttp.ClientSession() as session:
        pairs = await asyncio.gather(*(one(session, i, p) for i, p in prompts.items()))
    return dict(pairs)


def from_endpoint(
    prompts: Mapping[str, str],
    *,
    base_url: str,
    model: str,
    template: str = "{question}",
    variable: str = "question",
    system: str | None = None,
    concurrency: int = 8,
    retries: int = 3,
    timeout_s: float = 60.0,
    max_tokens: int = 256,
    api_key: str | None = None,
) -> Answers:
    """Ask an OpenAI-compatible endpoint (``base_url`` ends in ``/v1``) for each prompt
    (item_id -> prompt), greedy, at most ``concurrency`` requests in flight, each retried
    ``retries`` times on 5xx / 429 / network errors and bounded by ``timeout_s``."""
    texts = asyncio.run(
        _from_endpoint(
            prompts,
            base_url,
            model,
            template,
            variable,
            system,
            concurrency,
            retries,
            timeout_s,
            max_tokens,
            api_key,
        )
    )
    return Answers(texts, source=f"endpoint {base_url} model {model}")


def _chat_texts(
    tokenizer: Any, prompts: Mapping[str, str], template: str, variable: str, system: str | None
) -> list[str]:
    texts = []
    for prompt in prompts.values():
        messages = render_prompt(template, prompt, variable=variable, system=system)
        if getattr(tokenizer, "chat_template", None):
            texts.append(
                str(
                    tokenizer.apply_chat_template(
                        messages, tokenize=False, add_generation_prompt=True
                    )
                )
            )
        else:  # a base model without a chat template gets the same words as plain text
            texts.append("\n\n".join(m["content"] for m in messages))
    return texts


def from_transformers(
    prompts: Mapping[str, str],
    *,
    model: str,
    template: str = "{question}",
    variable: str = "question",
    system: str | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    device: str | None = None,
) -> Answers:
    """Generate answers greedily with a local transformers causal LM (path or cached repo;
    never downloaded: ``local_files_only``)."""
    torch = import_backend("torch", "transformers answers")
    transformers = import_backend("transformers", "transformers answers")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = transformers.AutoTokenizer.from_pretrained(
        model, local_files_only=True, padding_side="left"
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    lm = transformers.AutoModelForCausalLM.from_pretrained(model, local_files_only=True)
    lm = lm.to(device).eval()
    texts = _chat_texts(tok, prompts, template, variable, system)
    out: list[str] = []
    for start in range(0, len(texts), batch_size):
        batch = tok(texts[start : start + batch_size], return_tensors="pt", padding=True).to(device)
        with torch.inference_mode():
            gen = lm.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        new = gen[:, batch["input_ids"].shape[1] :]
        out.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
    return Answers(dict(zip(prompts.keys(), out, strict=True)), source=f"transformers {model}")


def from_vllm(
    prompts: Mapping[str, str],
    *,
    model: str,
    template: str = "{question}",
    variable: str = "question",
    system: str | None = None,
    max_new_tokens: int = 128,
    **engine_args: Any,
) -> Answers:
    """Generate answers greedily with an in-process vLLM engine (GPU; ``pip install
    'relgate[gpu]'``)."""
    vllm = import_backend("vllm", "vLLM answers")
    llm = vllm.LLM(model=model, **engine_args)
    texts = _chat_texts(llm.get_tokenizer(), prompts, template, variable, system)
    results = llm.generate(texts, vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens))
    out = [r.outputs[0].text.strip() for r in results]
    return Answers(dict(zip(prompts.keys(), out, strict=True)), source=f"vllm {model}")
