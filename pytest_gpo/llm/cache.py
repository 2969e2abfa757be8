"""The response cache: model answers keyed by :meth:`pytest_gpo.llm.types.Request.cache_key`.

Two stores share one entry format. :class:`FileCache` keeps one JSON file per entry under
``<dir>/<key[:2]>/<key>.json`` and writes it atomically (temp file in the same directory, fsync,
``os.replace``), so pytest-xdist workers and parallel CI jobs can share a directory: a reader
sees either no entry or a whole one. :class:`RedisCache` keeps the same JSON in Redis.

Each stored entry carries a sha256 checksum of its payload. An entry that cannot be parsed, is
truncated, belongs to another key or fails its checksum is never returned: it is a miss, and the
file store moves it aside into ``<dir>/corrupt/`` (Redis deletes it) so the next write repairs it.

The payload holds only ``texts``, ``prompt_tokens``, ``completion_tokens``, ``cost``, ``model``
and ``created``; anything else (an api key, a header) is refused at write time. A score entry
(:data:`SCORE_KEYS`: a scorer's cached number, see :mod:`pytest_gpo.scorers.score_cache`)
holds only ``score``, ``model`` and ``created``. Hit and miss counters live in the client, not
here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm.redact import install_log_redaction, remember, scrub
from pytest_gpo.llm.types import Completion, canonical_json

#: Marker and version written into every stored entry.
FORMAT = "pytest-gpo-response"
VERSION = 1

#: The only keys a cache entry's payload may hold.
PAYLOAD_KEYS: frozenset[str] = frozenset(
    {"texts", "prompt_tokens", "completion_tokens", "cost", "model", "created"}
)

#: Keys a response payload may hold besides :data:`PAYLOAD_KEYS`: answers cut at max_tokens
#: and the default limit that cut them (:mod:`~pytest_gpo.llm.limits`).
OPTIONAL_PAYLOAD_KEYS: frozenset[str] = frozenset({"cut", "cut_limit"})

#: The only keys a score entry's payload may hold (``score`` is a finite number).
SCORE_KEYS: frozenset[str] = frozenset({"score", "model", "created"})

_KEY_RE = re.compile(r"^[0-9a-f]{8,128}$")


@runtime_checkable
class ResponseCache(Protocol):
    """Where responses are kept between runs. Implementations must be safe across processes.

    A store whose reads are network round trips sets a class attribute ``remote = True``; the
    model client then reads it on a worker thread instead of blocking its event loop.
    """

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload stored under ``key``, or ``None`` (missing, unreadable or corrupt)."""
        ...

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (a payload of :data:`PAYLOAD_KEYS`) under ``key``, replacing any."""
        ...


def _check_key(key: str) -> None:
    # Keys become file names: only lowercase hex (a sha256 digest) can never escape the directory.
    if not _KEY_RE.match(key):
        raise ValueError(f"cache key must be 8-128 lowercase hex digits, got {key!r}")


def _checksum(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _validate_payload(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A clean copy of ``entry``; ValueError when it holds anything but a response payload."""
    if "score" in entry:
        return _validate_score(entry)
    extra = set(entry) - PAYLOAD_KEYS - OPTIONAL_PAYLOAD_KEYS
    if extra:
        allowed = sorted(PAYLOAD_KEYS | OPTIONAL_PAYLOAD_KEYS)
        raise ValueError(f"cache entries may only hold {allowed}; refusing {sorted(extra)}")
    texts = entry.get("texts")
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise ValueError("cache entry 'texts' must be a list of strings")
    payload: dict[str, Any] = {"texts": list(texts)}
    for name in ("prompt_tokens", "completion_tokens"):
        value = entry.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"cache entry {name!r} must be a non-negative int")
        payload[name] = value
    cost = entry.get("cost")
    if cost is not None and (
        not isinstance(cost, int | float) or isinstance(cost, bool) or not math.isfinite(cost)
    ):
        raise ValueError("cache entry 'cost' must be a finite number or None")
    payload["cost"] = None if cost is None else float(cost)
    model = entry.get("model", "")
    if not isinstance(model, str):
        raise ValueError("cache entry 'model' must be a string")
    payload["model"] = model
    created = entry.get("created", time.time())
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ValueError("cache entry 'created' must be a number")
    payload["created"] = float(created)
    # optional: answers cut at max_tokens, and the default limit that cut them (llm/limits.py)
    cut = entry.get("cut")
    if cut is not None:
        if not isinstance(cut, list | tuple) or not all(isinstance(c, bool) for c in cut):
            raise ValueError("cache entry 'cut' must be a list of booleans")
        payload["cut"] = list(cut)
    limit = entry.get("cut_limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError("cache entry 'cut_limit' must be a positive int")
        payload["cut_limit"] = limit
    return payload


def _validate_score(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A clean copy of a score entry; ValueError when it holds anything else."""
    extra = set(entry) - SCORE_KEYS
    if extra:
        raise ValueError(
            f"score entries may only hold {sorted(SCORE_KEYS)}; refusing {sorted(extra)}"
        )
    score = entry["score"]
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        raise ValueError("score entry 'score' must be a finite number")
    model = entry.get("model", "")
    created = entry.get("created", time.time())
    if not isinstance(model, str):
        raise ValueError("score entry 'model' must be a string")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ValueError("score entry 'created' must be a number")
    return {"score": float(score), "model": model, "created": float(created)}


def cache_entry(
    completion: Completion, model: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The payload that stores a successful completion of ``model`` (plus ``extra`` fields)."""
    return {
        **(extra or {}),
        "texts": list(completion.texts),
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "cost": completion.cost,
        "model": model,
        "created": time.time(),
    }


def cached_completion(entry: Mapping[str, Any], n: int) -> Completion | None:
    """The completion a stored payload holds; None unless it has exactly ``n`` texts."""
    texts = entry.get("texts")
    if not isinstance(texts, list) or len(texts) != n:
        return None
    cost = entry.get("cost")
    cut = entry.get("cut")
    return Completion(
        texts=tuple(str(t) for t in texts),
        cut=tuple(bool(c) for c in cut) if isinstance(cut, list) and len(cut) == n else (),
        prompt_tokens=int(entry.get("prompt_tokens") or 0),
        completion_tokens=int(entry.get("completion_tokens") or 0),
        cost=float(cost) if isinstance(cost, int | float) else None,
        cached=True,
        attempts=0,
    )


def encode_entry(key: str, entry: Mapping[str, Any]) -> bytes:
    """The stored form of a payload: JSON with format, version, key, checksum and payload."""
    payload = _validate_payload(entry)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "key": key,
        "checksum": _checksum(payload),
        "payload": payload,
    }
    text = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def decode_entry(key: str, data: bytes) -> dict[str, Any] | None:
    """The payload of a stored entry, or ``None`` when it is not a whole, intact entry for key."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    if record.get("version") != VERSION or record.get("key") != key:
        return None
    payload = record.get("payload")
    if not isinstance(payload, dict) or record.get("checksum") != _checksum(payload):
        return None
    try:
        return _validate_payload(payload)
    except ValueError:
        return None


class FileCache:
    """A directory of JSON entries, ``<dir>/<key[:2]>/<key>.json``, safe for concurrent writers."""

    #: Reads are local file reads: cheaper inline than on a worker thread.
    remote = False

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileCache({str(self.directory)!r})"

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        _check_key(key)
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload under ``key``; a corrupt entry is moved to ``corrupt/`` and is a miss."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
                identity = os.fstat(handle.fileno())
        except OSError:
            return None
        payload = decode_entry(key, data)
        if payload is None:
            self._quarantine(path, identity)
        return payload

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Write the entry atomically: a reader never sees a partial file."""
        path = self.path(key)
        data = encode_entry(key, entry)
        try:
            self._write(path, data)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write(path, data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                # mkstemp makes 0600 files; a cache shared by CI jobs or users must be readable.
                os.fchmod(handle.fileno(), 0o644)
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _quarantine(self, path: Path, identity: os.stat_result) -> None:
        # Another process may have replaced the bad file with a good one since we read it:
        # move it aside only while the path still names the very file we read.
        try:
            current = os.stat(path)
            if (current.st_ino, current.st_dev) != (identity.st_ino, identity.st_dev):
                return
            target_dir = self.directory / "corrupt"
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{path.stem}.{os.getpid()}.{time.time_ns()}.json"
            os.replace(path, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)


#: Seconds a Redis connect or command may take before it counts as a failure.
REDIS_TIMEOUT = 2.0
#: Failures (timeouts, refused connections, errors) within :data:`REDIS_WINDOW` seconds after
#: which Redis is not used again in this process: the run goes on without a cache.
REDIS_MAX_FAILURES = 3
REDIS_WINDOW = 60.0


class RedisCache:
    """Entries in Redis (``redis://host:port/db``), same format and checksum rule as files.

    redis-py is imported when the cache is created, never at module import. ``ttl`` (seconds)
    lets Redis expire old entries; ``client`` injects a ready redis client (tests). The client
    is thread-safe (a connection pool), so reads may run on worker threads.

    Every connect and command times out after ``timeout`` seconds, without redis-py's own
    retries. A circuit breaker then bounds a Redis that stalls or goes away: after
    ``max_failures`` failed calls within ``window`` seconds the cache is *tripped*, reads are
    misses and writes are dropped for the rest of the run, and :attr:`warning` says so (once,
    with the URL's password hidden). Failures before the trip raise, as before.
    """

    #: Every read is a network round trip: the model client runs it off the event loop.
    remote = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pytest-gpo:response:",
        ttl: int | None = None,
        client: Any = None,
        timeout: float = REDIS_TIMEOUT,
        max_failures: int = REDIS_MAX_FAILURES,
        window: float = REDIS_WINDOW,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.max_failures = max_failures
        self.window = window
        self._failures: list[float] = []
        self._lock = threading.Lock()
        #: Why Redis is no longer used (``None`` while it is).
        self.warning: str | None = None
        if client is None:
            try:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry
            except ImportError:
                # a ConfigError, not a traceback: pytest would print the frame's url argument
                # (and its password) beside an ImportError
                raise ConfigError(
                    f"a Redis response cache ({_redact_url(url)}) needs redis-py, which is "
                    "not installed",
                    key="gpo_cache_url",
                    fix="pip install 'pytest-gpo[redis]', or unset GPO_CACHE_URL / "
                    "gpo_cache_url to use the file cache",
                ) from None
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
        self._client = client

    def __repr__(self) -> str:
        return f"RedisCache({_redact_url(self.url)!r})"

    @property
    def tripped(self) -> bool:
        """Whether the circuit breaker stopped using Redis."""
        return self.warning is not None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One Redis command through the circuit breaker; ``None`` once it has tripped."""
        if self.warning is not None:
            return None
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except Exception as exc:
            now = time.monotonic()
            with self._lock:
                self._failures = [t for t in self._failures if now - t < self.window]
                self._failures.append(now)
                if len(self._failures) >= self.max_failures and self.warning is None:
                    self.warning = (
                        f"the Redis response cache {_redact_url(self.url)} failed "
                        f"{len(self._failures)} times within {self.window:g}s (last: "
                        f"{type(exc).__name__}: {exc}); the rest of the run used no cache "
                        "(answers were fetched and not cached)"
                    )
            if self.warning is not None:
                return None
            raise

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload under ``key``; a corrupt entry is deleted and is a miss."""
        _check_key(key)
        name = self.prefix + key
        data = self._call("get", name)
        if data is None:
            return None
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        payload = decode_entry(key, raw)
        if payload is None:
            # Delete only if nobody rewrote it meanwhile (a benign race either way: a miss).
            again = self._call("get", name)
            if again == data:
                self._call("delete", name)
        return payload

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store the entry (one atomic SET)."""
        _check_key(key)
        self._call("set", self.prefix + key, encode_entry(key, entry), ex=self.ttl)

    def close(self) -> None:
        """Close the connection pool."""
        close = getattr(self._client, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _redact_url(url: str) -> str:
    return scrub(url)


def open_cache(dir_or_url: str | os.PathLike[str]) -> ResponseCache:
    """A :class:`RedisCache` for ``redis://``, ``rediss://`` or ``unix://`` URLs, else a
    :class:`FileCache` on that directory.

    A URL redis-py cannot parse (``redis://:pw@host:notaport/0``) is a
    :class:`~pytest_gpo.errors.ConfigError` whose text holds no password or query value.
    """
    text = os.fspath(dir_or_url)
    if text.startswith(_REDIS_SCHEMES):
        install_log_redaction()
        remember([text])
        try:
            return RedisCache(text)
        except ImportError:
            raise
        except Exception as exc:
            problem = scrub(f"{type(exc).__name__}: {exc}")
        raise ConfigError(
            f"the shared cache URL {scrub(text)} cannot be used: {problem}",
            key="gpo_cache_url",
            fix="write redis://[:PASSWORD@]HOST:PORT/DB (or rediss://, unix://) in "
            "gpo_cache_url or GPO_CACHE_URL",
        )
    return FileCache(text)
