"""The response cache: round trips, atomic writes, concurrent writers, corrupt entries."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo.llm.cache import (
    PAYLOAD_KEYS,
    FileCache,
    RedisCache,
    ResponseCache,
    decode_entry,
    encode_entry,
    open_cache,
)


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(text: str = "hello", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "texts": [text],
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "cost": 0.00012,
        "model": "openai/gpt-4o-mini",
        "created": 1700000000.0,
    }
    data.update(extra)
    return data


def test_round_trip_and_layout(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    key = key_of("a")
    assert cache.get(key) is None
    cache.put(key, entry())
    assert cache.get(key) == entry()
    path = tmp_path / key[:2] / f"{key}.json"
    assert cache.path(key) == path and path.is_file()
    record = json.loads(path.read_text())
    assert record["key"] == key
    assert set(record["payload"]) == PAYLOAD_KEYS
    assert len(record["checksum"]) == 64
    assert isinstance(cache, ResponseCache)


def test_put_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    key = key_of("a")
    cache.put(key, entry("one"))
    cache.put(key, entry("two", cost=None))
    assert cache.get(key) == entry("two", cost=None)
    assert [p.name for p in (tmp_path / key[:2]).iterdir()] == [f"{key}.json"]


@pytest.mark.parametrize("secret", ["api_key", "headers", "extra_headers", "authorization"])
def test_refuses_anything_but_the_payload(tmp_path: Path, secret: str) -> None:
    cache = FileCache(tmp_path)
    with pytest.raises(ValueError, match="may only hold"):
        cache.put(key_of("a"), entry(**{secret: "sk-secret"}))
    assert not any(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABCDEF0123", "abc", "g" * 64, ""])
def test_rejects_keys_that_are_not_hex_digests(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="hex"):
        FileCache(tmp_path).put(bad, entry())


def _corruptions(data: bytes, key: str) -> dict[str, bytes]:
    record = json.loads(data)
    tampered = json.loads(data)
    tampered["payload"]["texts"] = ["tampered"]
    other_key = json.loads(data)
    other_key["key"] = key_of("other")
    bad_types = json.loads(data)
    bad_types["payload"]["prompt_tokens"] = "many"
    bad_types["checksum"] = hashlib.sha256(
        json.dumps(bad_types["payload"], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "one byte short": data[:-1],
        "garbage": os.urandom(64),
        "not an object": b"[1, 2, 3]",
        "checksum mismatch": json.dumps(tampered).encode(),
        "no checksum": json.dumps({k: v for k, v in record.items() if k != "checksum"}).encode(),
        "entry of another key": json.dumps(other_key).encode(),
        "bad payload types": json.dumps(bad_types).encode(),
        "wrong version": json.dumps({**record, "version": 99}).encode(),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "empty",
        "truncated",
        "one byte short",
        "garbage",
        "not an object",
        "checksum mismatch",
        "no checksum",
        "entry of another key",
        "bad payload types",
        "wrong version",
    ],
)
def test_corrupt_entries_are_misses_and_quarantined(tmp_path: Path, kind: str) -> None:
    cache = FileCache(tmp_path)
    key = key_of("a")
    cache.put(key, entry())
    path = cache.path(key)
    path.write_bytes(_corruptions(path.read_bytes(), key)[kind])
    assert cache.get(key) is None
    assert not path.exists()
    assert len(list((tmp_path / "corrupt").iterdir())) == 1
    # The next write repairs the entry.
    cache.put(key, entry())
    assert cache.get(key) == entry()


def test_quarantine_spares_a_file_replaced_meanwhile(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    key = key_of("a")
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{broken")
    stale = os.stat(path)
    cache.put(key, entry())  # another process repairs it after our read
    cache._quarantine(path, stale)
    assert cache.get(key) == entry()


def test_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FileCache(tmp_path)
    key = key_of("a")
    cache.put(key, entry("old"))

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        cache.put(key, entry("new"))
    monkeypatch.undo()
    assert cache.get(key) == entry("old")
    assert [p.name for p in cache.path(key).parent.iterdir()] == [f"{key}.json"]


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    key = key_of("big")
    big = "x" * 100_000
    stop = threading.Event()
    seen: list[int] = []
    cache.put(key, entry(big))

    def writer() -> None:
        i = 0
        while not stop.is_set():
            cache.put(key, entry(big + str(i % 10)))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(150):
            got = cache.get(key)
            if got is not None:
                assert got["texts"][0].startswith(big)
                seen.append(len(got["texts"][0]))
    finally:
        stop.set()
        thread.join()
    assert seen, "the reader never saw an entry"
    assert not (tmp_path / "corrupt").exists()


def _hammer(directory: str, worker: int, keys: list[str], rounds: int) -> None:
    cache = FileCache(directory)
    for r in range(rounds):
        for key in keys:
            cache.put(key, entry(f"{worker}:{r}:" + key * 500, prompt_tokens=worker))
            got = cache.get(key)
            assert got is not None, "a reader saw a missing or corrupt entry"


@pytest.mark.slow
def test_concurrent_writer_processes_never_corrupt(tmp_path: Path) -> None:
    keys = [key_of(str(i)) for i in range(12)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, keys, 8)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    cache = FileCache(tmp_path)
    for key in keys:
        got = cache.get(key)
        assert got is not None
        worker = got["prompt_tokens"]
        assert got["texts"][0].startswith(f"{worker}:7:")
    assert not (tmp_path / "corrupt").exists()
    assert not list(tmp_path.rglob("*.tmp"))


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(st.text(), min_size=1, max_size=3),
    tokens=st.integers(min_value=0, max_value=10**9),
    cost=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
)
def test_encode_decode_round_trip(texts: list[str], tokens: int, cost: float | None) -> None:
    key = key_of("k")
    data = entry(texts=texts, prompt_tokens=tokens, cost=cost)
    payload = decode_entry(key, encode_entry(key, data))
    assert payload is not None
    assert payload["texts"] == texts and payload["prompt_tokens"] == tokens
    assert payload["cost"] == cost
    assert decode_entry(key_of("other"), encode_entry(key, data)) is None


class FakeRedis:
    """The three redis-py calls RedisCache uses, over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.expiry: dict[str, int | None] = {}

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def set(self, name: str, value: bytes, ex: int | None = None) -> None:
        self.data[name] = value
        self.expiry[name] = ex

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


def test_redis_cache_round_trip_and_corruption() -> None:
    fake = FakeRedis()
    cache = RedisCache("redis://127.0.0.1:6379/0", client=fake, ttl=60)
    key = key_of("a")
    assert cache.get(key) is None
    cache.put(key, entry())
    assert cache.get(key) == entry()
    name = "pytest-gpo:response:" + key
    assert fake.expiry[name] == 60
    fake.data[name] = fake.data[name][:-5]
    assert cache.get(key) is None
    assert name not in fake.data
    with pytest.raises(ValueError, match="may only hold"):
        cache.put(key, entry(api_key="sk-secret"))


def test_open_cache_picks_the_store(tmp_path: Path) -> None:
    assert isinstance(open_cache(tmp_path), FileCache)
    assert isinstance(open_cache(str(tmp_path / "sub")), FileCache)
    # redis-py connects lazily: building the cache makes no connection.
    redis_cache = open_cache("redis://:hunter22@127.0.0.1:6399/0")
    assert isinstance(redis_cache, RedisCache)
    assert "hunter22" not in repr(redis_cache)
    assert isinstance(redis_cache, ResponseCache)
    redis_cache.close()
