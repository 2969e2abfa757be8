"""The Redis response cache: a fully cached suite read from files, from Redis, and from a
"remote" Redis (a proxy adding ``--rtt-ms`` per round trip), with reads on the event loop
(``remote = False``) and on worker threads (the default for Redis).

A redis-server is started on a free port of 127.0.0.1 (persistence off) and stopped after.
The suite is filled once through the local server, then ``evaluate()`` re-runs it, all hits.

    .venv/bin/python benchmarks/bench_redis.py [--cases 1000] [--rtt-ms 1.0] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import harness


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A private redis-server; yields its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def delay_proxy(target_port: int, one_way_s: float) -> Iterator[int]:
    """A TCP proxy to ``target_port`` that holds every chunk ``one_way_s`` each way."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await asyncio.sleep(one_way_s)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def start() -> asyncio.AbstractServer:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        return server

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port_box[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def main() -> None:
    """Fill, then time all-hit re-runs for each store and read mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--rtt-ms", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    harness.common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", harness.BENCH_KEY)

    from pytest_gpo.evaluate import EvalOptions, evaluate
    from pytest_gpo.llm.cache import FileCache, RedisCache
    from pytest_gpo.llm.client import LiteLLMClient
    from pytest_gpo.llm.loop import EventLoopRunner
    from pytest_gpo.scorers.registry import builtin_registry
    from pytest_gpo.suites.load import load_suite

    rows: list[dict[str, Any]] = []
    with (
        harness.workdir("redis") as tmp,
        harness.ServerProcess() as srv,
        redis_server() as port,
        delay_proxy(port, args.rtt_ms / 2000) as proxy_port,
        EventLoopRunner() as runner,
    ):
        path = harness.write_suite(tmp, "bench", cases=args.cases, api_base=srv.base_url)
        suite = load_suite(path, builtin_registry(), trusted_params=("api_base",))
        options = EvalOptions(model=harness.BENCH_MODEL)
        stores: dict[str, Any] = {
            "file cache": FileCache(tmp / "cache"),
            "redis, local": RedisCache(f"redis://127.0.0.1:{port}/0"),
            f"redis, +{args.rtt_ms:g} ms round trip": RedisCache(
                f"redis://127.0.0.1:{proxy_port}/0"
            ),
        }
        for store in list(stores.values())[:2]:
            filler = LiteLLMClient(cache=store, concurrency=32)
            runner.run(evaluate(suite, filler, options))
            runner.run(filler.aclose())
        srv.reset()
        for name, store in stores.items():
            modes = (False, True) if name != "file cache" else (False,)
            for threaded in modes:
                best = None
                for _ in range(args.repeats):
                    type(store).remote = threaded
                    client = LiteLLMClient(cache=store, concurrency=32)
                    start = time.perf_counter()
                    run = runner.run(evaluate(suite, client, options))
                    seconds = time.perf_counter() - start
                    assert run.usage.cache_hits == args.cases, run.usage
                    best = seconds if best is None else min(best, seconds)
                type(store).remote = isinstance(store, RedisCache)
                assert best is not None
                rows.append(
                    {
                        "store": name,
                        "reads": "worker threads" if threaded else "on the event loop",
                        "seconds": round(best, 3),
                        "ms_per_case": round(1000 * best / args.cases, 3),
                    }
                )
        calls = srv.stats()["chat_requests"]
        for store in stores.values():
            if isinstance(store, RedisCache):
                store.close()

    harness.table(
        f"Cached evaluate() over {args.cases} cases by cache store",
        rows,
        notes=[
            f"best of {args.repeats}; model calls during the re-runs: {calls}. Redis defaults to "
            "worker-thread reads (RedisCache.remote = True)."
        ],
    )
    harness.write_json(
        args.json, "redis", {"args": vars(args), "rows": rows, "calls_during_reruns": calls}
    )


if __name__ == "__main__":
    main()
