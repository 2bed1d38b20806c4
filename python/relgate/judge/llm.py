"""LLM judges: P("yes, the answer states the same facts as the reference"), from logprobs.

Prefill only: one forward pass per pair, reading the next-token distribution after the judge
prompt (``max_tokens=1`` with the top logprobs on an endpoint). Agreement is
``p(yes) / (p(yes) + p(no))``, where p(yes) sums the probability of every top token that reads
"yes" once stripped of spaces and punctuation and lowercased ("Yes", " yes", ...), and the same
for "no". A distribution with neither in its top tokens is a ``JudgeError``, never a guess.

Backends: any OpenAI-compatible endpoint (chat completions with ``logprobs``; a vLLM server,
for instance), a local transformers causal LM, and an in-process vLLM engine (GPU; imported
lazily). ``judge_sha256`` covers the model, the weights (sha256 of the safetensors files for a
local model; an endpoint exposes only the served model name), the prompt and the settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from relgate.engines.http import auth_headers, post_json
from relgate.errors import JudgeError, JudgeUnavailableError
from relgate.judge.base import (
    IdentifiedJudge,
    check_pairs,
    check_scores,
    file_sha256,
    import_backend,
)

__all__ = [
    "JUDGE_PROMPT",
    "JUDGE_SYSTEM",
    "OpenAIJudge",
    "TransformersJudge",
    "VLLMJudge",
    "judge_messages",
    "yes_probability",
]

JUDGE_SYSTEM = "You grade answers. Reply with exactly one word: yes or no."
JUDGE_PROMPT = (
    "Reference answer: {reference}\n"
    "Candidate answer: {answer}\n"
    "Does the candidate answer state the same facts as the reference answer? Answer yes or no."
)
T = TypeVar("T")


def judge_messages(answer: str, reference: str) -> list[dict[str, str]]:
    """The chat messages an LLM judge is shown for one pair."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_PROMPT.format(reference=reference, answer=answer)},
    ]


def _word(token: str) -> str:
    return token.strip().strip(".,:;!\"'").lower()


def yes_probability(top: Iterable[tuple[str, float]]) -> float:
    """``p(yes) / (p(yes) + p(no))`` from (token text, logprob) pairs."""
    p_yes = p_no = 0.0
    for token, logprob in top:
        word = _word(token)
        if word == "yes":
            p_yes += math.exp(logprob)
        elif word == "no":
            p_no += math.exp(logprob)
    if p_yes + p_no <= 0.0:
        raise JudgeError("LLM judge: neither 'yes' nor 'no' among the top tokens")
    return p_yes / (p_yes + p_no)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller is inside an event loop (then in a
    helper thread, since a running loop cannot be re-entered)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _settings(**extra: Any) -> dict[str, Any]:
    return {"agree": "p(yes)/(p(yes)+p(no))", "system": JUDGE_SYSTEM, **extra}


class OpenAIJudge(IdentifiedJudge):
    """LLM judge over an OpenAI-compatible chat-completions endpoint (``base_url`` ends in
    ``/v1``), with bounded concurrency, retries on 5xx / 429 / network errors, and timeouts."""

    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        retries: int = 3,
        timeout_s: float = 30.0,
        top_logprobs: int = 20,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.retries = retries
        self.timeout_s = timeout_s
        self.top_logprobs = top_logprobs
        self._identify(
            model=model,
            weights=f"served-model:{model}",
            prompt=JUDGE_PROMPT,
            settings=_settings(top_logprobs=top_logprobs, max_tokens=1, temperature=0.0),
        )
        self.requests = 0

    async def _one(self, session: Any, gate: asyncio.Semaphore, answer: str, ref: str) -> float:
        body = {
            "model": self.model,
            "messages": judge_messages(answer, ref),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        url = f"{self.base_url}/chat/completions"
        self.requests += 1
        data = await post_json(
            session,
            url,
            body,
            headers=auth_headers(self.api_key),
            retries=self.retries,
            timeout_s=self.timeout_s,
            gate=gate,
            client_error=JudgeError,
        )
        try:
            top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(t["token"], float(t["logprob"])) for t in top]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise JudgeError(f"{url}: response without top logprobs ({exc!r})") from exc
        return yes_probability(pairs)

    async def ascore(
        self, answers: Sequence[str], references: Sequence[str]
    ) -> npt.NDArray[np.float64]:
        """``score`` for callers already inside an event loop."""
        check_pairs(answers, references)
        aiohttp = import_backend("aiohttp", "OpenAI-compatible judge")
        gate = asyncio.Semaphore(self.concurrency)
        async with aiohttp.ClientSession() as session:
            scores = await asyncio.gather(
                *(self._one(session, gate, a, r) for a, r in zip(answers, references, strict=True))
            )
        return check_scores(np.asarray(scores, dtype=np.float64), self.backend)

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """P(yes) per pair, one request each."""
        if not answers:
            check_pairs(answers, references)
            return np.zeros(0, dtype=np.float64)
        return _run(self.ascore(answers, references))


def _weights_identity(model: str) -> str:
    """sha256 over the (name, sha256) of every safetensors file of a local model directory;
    a model that is not a local directory is named but unverified."""
    path = Path(model)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if not files:
        return f"unverified:{model}"
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _prompt_text(tokenizer: Any, answer: str, reference: str) -> str:
    messages = judge_messages(answer, reference)
    if getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    # A base model without a chat template gets the same words as plain text.
    return f"{messages[0]['content']}\n\n{messages[1]['content']}\nAnswer:"


class TransformersJudge(IdentifiedJudge):
    """LLM judge on a local transformers causal LM (CPU or GPU), batched prefill."""

    backend = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        batch_size: int = 16,
        dtype: str = "auto",
    ) -> None:
        self.model_name = str(model)
        self.batch_size = batch_size
        self.dtype = dtype
        torch = import_backend("torch", "transformers judge")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._identify(
            model=self.model_name,
            weights=_weights_identity(self.model_name),
            prompt=JUDGE_PROMPT,
            settings=_settings(dtype=dtype),
        )
        self._model: Any = None
        self._tok: Any = None
        self._yes: list[int] = []
        self._no: list[int] = []
        self.tokens_processed = 0

    def _load(self) -> None:
        if self._model is not None:
            return
        transformers = import_backend("transformers", "transformers judge")
        torch = import_backend("torch", "transformers judge")
        transformers.utils.logging.disable_progress_bar()
        tok = transformers.AutoTokenizer.from_pretrained(
            self.model_name, local_files_only=True, padding_side="left"
        )
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        # ``dtype`` is the transformers >= 4.56 name (``torch_dtype`` before); left out for
        # "auto" so that older versions load the checkpoint's own dtype as well.
        extra = {} if self.dtype == "auto" else {"dtype": getattr(torch, self.dtype)}
        model = transformers.AutoModelForCausalLM.from_pretrained(
            self.model_name, local_files_only=True, **extra
        )
        self._model = model.to(self.device).eval()
        self._tok = tok
        # Every single-token spelling of yes / no the tokenizer has.
        for word, bucket in (("yes", self._yes), ("no", self._no)):
            for variant in (word, word.capitalize(), " " + word, " " + word.capitalize()):
                ids = tok.encode(variant, add_special_tokens=False)
                if len(ids) == 1 and ids[0] not in bucket:
                    bucket.append(ids[0])
        if not self._yes or not self._no:
            raise JudgeUnavailableError(f"{self.model_name}: no single-token 'yes'/'no'")

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """P(yes) per pair from the next-token distribution after the prompt."""
        check_pairs(answers, references)
        if not answers:
            return np.zeros(0, dtype=np.float64)
        self._load()
        torch = import_backend("torch", "transformers judge")
        texts = [_prompt_text(self._tok, a, r) for a, r in zip(answers, references, strict=True)]
        out = np.empty(len(texts), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self._tok(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            mask = batch["attention_mask"]
            # Left padding puts every row's next-token position last; positions must count from
            # each row's first real token, or a padded row would be scored at shifted positions.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self._model(
                    input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions
                ).logits[:, -1, :]
            logits = logits.float()
            probs = torch.softmax(logits, dim=-1)
            p_yes = probs[:, self._yes].sum(dim=-1)
            p_no = probs[:, self._no].sum(dim=-1)
            ratio = (p_yes / (p_yes + p_no).clamp(min=1e-30)).cpu().numpy()
            self.tokens_processed += int(batch["attention_mask"].sum())
            out[idx] = ratio
        return check_scores(out, self.backend)


class VLLMJudge(IdentifiedJudge):
    """LLM judge on an in-process vLLM engine (GPU): prefill plus one sampled position whose
    top logprobs are read."""

    backend = "vllm"

    def __init__(self, model: str, *, top_logprobs: int = 20, **engine_args: Any) -> None:
        self.model_name = str(model)
        self.top_logprobs = top_logprobs
        self.engine_args = engine_args
        self._identify(
            model=self.model_name,
            weights=_weights_identity(self.model_name),
            prompt=JUDGE_PROMPT,
            settings=_settings(top_logprobs=top_logprobs, max_tokens=1, temperature=0.0),
        )
        self._llm: Any = None
        self.tokens_processed = 0

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """P(yes) per pair, all pairs in one engine call."""
        check_pairs(answers, references)
        if not answers:
            return np.zeros(0, dtype=np.float64)
        vllm = import_backend("vllm", "vLLM judge")
        if self._llm is None:
            self._llm = vllm.LLM(model=self.model_name, **self.engine_args)
        tok = self._llm.get_tokenizer()
        texts = [_prompt_text(tok, a, r) for a, r in zip(answers, references, strict=True)]
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs)
        results = self._llm.generate(texts, params, use_tqdm=False)
        scores = []
        for res in results:
            self.tokens_processed += len(res.prompt_token_ids or ())
            top = res.outputs[0].logprobs[0]
            scores.append(
                yes_probability((lp.decoded_token or "", lp.logprob) for lp in top.values())
            )
        return check_scores(np.asarray(scores, dtype=np.float64), self.backend)
