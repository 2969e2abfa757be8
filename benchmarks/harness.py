"""Shared pieces of the benchmarks: a local server in its own process, suites, timing, tables.

The OpenAI-compatible server is ``tests/openai_server.py`` (imported by path, not copied). A
benchmark runs it in a *separate process* (``python benchmarks/harness.py serve ...``) so that
its request handling never competes for the GIL with the client being measured. The child
prints its port, then answers commands on stdin: ``stats`` (one JSON line of counters),
``reset`` (zero the counters) and ``quit``.

Everything that runs pytest runs it in a subprocess and reads the child's peak RSS from
``os.wait4``; the probe plugin (``benchmarks/gpo_probe.py``, loaded with ``-p gpo_probe``)
reports which heavy modules the child imported and how long each item took.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tabulate import tabulate

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
TESTS_DIR = ROOT / "tests"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

#: The model name the generated suites use: litellm's OpenAI provider, pointed at the server.
BENCH_MODEL = "openai/bench"
BENCH_KEY = "sk-bench-not-a-secret"


def load_openai_server() -> ModuleType:
    """``tests/openai_server.py`` as a module (it lives with the tests; we only import it)."""
    name = "openai_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS_DIR / "openai_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- the server in its own process ------------------------------------------------------------


class ServerProcess:
    """``OpenAIServer`` in a child process; ``stats()`` reads its counters over a pipe."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        rate_limit: int | None = None,
        retry_after: float = 1.0,
    ) -> None:
        cmd = [
            PYTHON,
            str(Path(__file__)),
            "serve",
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
            "--retry-after",
            str(retry_after),
        ]
        if rate_limit is not None:
            cmd += ["--rate-limit", str(rate_limit)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        self.port = int(json.loads(line)["port"])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the server."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stats(self) -> dict[str, Any]:
        """``requests``, ``chat_requests``, ``peak_concurrency`` and ``status`` counts."""
        return self._ask("stats")

    def reset(self) -> None:
        """Zero the counters."""
        self._ask("reset")

    def close(self) -> None:
        """Stop the child."""
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.py serve")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--retry-after", type=float, default=1.0)
    args = parser.parse_args(argv)
    server_module = load_openai_server()
    server = server_module.OpenAIServer(
        latency=args.latency,
        jitter=args.jitter,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        responder=_bench_responder,
    )
    with server:
        print(json.dumps({"port": server.port}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                served: dict[str, int] = {}
                for kind in list(server.faults_served):
                    served[kind] = served.get(kind, 0) + 1
                print(
                    json.dumps(
                        {
                            "requests": server.requests,
                            "chat_requests": server.chat_requests,
                            "peak_concurrency": server.peak_concurrency,
                            "served": served,
                        }
                    ),
                    flush=True,
                )
            elif command == "reset":
                server.reset_counters()
                print("{}", flush=True)
            elif command == "quit":
                break


_DSPY_FIELD_RE = re.compile(r"\[\[ ## (\w+) ## \]\]")


def _bench_responder(body: dict[str, Any]) -> str:
    """The ticket's label ("... [label:billing] ..." -> billing), so that suites pass.

    A prompt in DSPy's chat-adapter format (``[[ ## field ## ]]`` markers) gets its answer in
    that format, as a real model would give it; otherwise DSPy would parse nothing and retry.
    """
    label = "other"
    last = ""
    for message in reversed(body.get("messages", [])):
        content = str(message.get("content", ""))
        if not last and message.get("role") == "user":
            last = content
        if "[label:" in content:
            label = content.split("[label:", 1)[1].split("]", 1)[0]
            break
    if "[[ ## completed ## ]]" in last and "Respond with" in last:
        fields = [
            f for f in _DSPY_FIELD_RE.findall(last.rsplit("Respond with", 1)[1]) if f != "completed"
        ]
        return "".join(f"[[ ## {f} ## ]]\n{label}\n\n" for f in fields) + "[[ ## completed ## ]]"
    return label


# -- generated suites ---------------------------------------------------------------------------

LABELS = ("billing", "technical", "account", "shipping", "other")


def case_lines(n: int, *, offset: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct cases whose expected label the benchmark server answers."""
    cases = []
    for i in range(offset, offset + n):
        label = LABELS[i % len(LABELS)]
        cases.append(
            {
                "id": f"c{i:05d}",
                "vars": {"ticket": f"ticket {i}: please help [label:{label}]"},
                "expected": label,
            }
        )
    return cases


PROMPT = (
    "Route this support ticket to one team: billing, technical, account, shipping or other.\n"
    "Answer with only the category name.\n\nTicket: {{ ticket }}\n"
)


def write_suite(
    directory: Path,
    name: str,
    *,
    cases: int,
    model: str = BENCH_MODEL,
    api_base: str | None = None,
    offset: int = 0,
    prompt: str = PROMPT,
    scorers: Sequence[Mapping[str, Any]] = ({"type": "exact", "ignore_case": True},),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<name>.gpo.yaml`` with its prompt and ``cases`` cases; return the suite path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text(prompt, encoding="utf-8")
    with open(directory / f"{name}.jsonl", "w", encoding="utf-8") as handle:
        for case in case_lines(cases, offset=offset):
            handle.write(json.dumps(case) + "\n")
    suite: dict[str, Any] = {
        "name": name,
        "prompt": f"{name}.txt",
        "model": model,
        "cases": f"{name}.jsonl",
        "scorers": list(scorers),
        "threshold": 0.5,
    }
    if api_base is not None:
        suite["params"] = {"api_base": api_base}
    suite.update(extra or {})
    path = directory / f"{name}.gpo.yaml"
    # JSON is YAML: no YAML writer needed.
    path.write_text(json.dumps(suite, indent=1), encoding="utf-8")
    return path


def write_ini(directory: Path, **keys: Any) -> None:
    """A ``pytest.ini`` that makes ``directory`` the rootdir (and sets ``gpo_*`` keys).

    The benchmark's own suites name the local server in ``params.api_base``: a key the
    project's ini must trust (docs/reliability.md#trust-model).
    """
    keys = {"gpo_trusted_params": "api_base", **keys}
    lines = ["[pytest]"] + [f"{k} = {v}" for k, v in keys.items()]
    (directory / "pytest.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_trivial_tests(directory: Path, *, tests: int, files: int = 1) -> None:
    """``tests`` trivial test functions spread over ``files`` files: pytest's own floor."""
    directory.mkdir(parents=True, exist_ok=True)
    per_file = math.ceil(tests / files)
    written = 0
    for f in range(files):
        count = min(per_file, tests - written)
        body = "".join(f"def test_{f}_{i}():\n    assert {i} == {i}\n\n\n" for i in range(count))
        (directory / f"test_trivial_{f:04d}.py").write_text(body, encoding="utf-8")
        written += count


# -- running pytest in a child process --------------------------------------------------------


@dataclass
class ChildRun:
    """A finished child process: exit code, wall and CPU seconds, peak RSS, output, probe data."""

    returncode: int
    seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str
    probe: dict[str, Any] = field(default_factory=dict)
    #: user + system CPU seconds of the child (less moved by other load than the wall time)
    cpu_seconds: float = 0.0


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of benchmark children: offline-safe, probe importable, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPO_", "PYTEST_"))}
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OPENAI_API_KEY": BENCH_KEY,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")])),
        }
    )
    env.pop("CI", None)
    # This machine sets PYTHONDONTWRITEBYTECODE=1 for every process, so each run would compile
    # every imported module from source (and pytest re-rewrite the asserts of every test file
    # and plugin module). Users' machines cache bytecode; measure what they get. Best-of-N
    # runs include a first run that writes the caches.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def run_child(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, probe: bool = True
) -> ChildRun:
    """Run ``args`` in ``cwd``; with ``probe`` set, read what ``gpo_probe`` recorded."""
    env = dict(env if env is not None else bench_env())
    probe_file = None
    if probe:
        fd, name = tempfile.mkstemp(prefix="gpo-probe-", suffix=".json")
        os.close(fd)
        probe_file = Path(name)
        env["GPO_PROBE_OUT"] = str(probe_file)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    data: dict[str, Any] = {}
    if probe_file is not None:
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(probe_file.read_text(encoding="utf-8") or "{}")
        probe_file.unlink(missing_ok=True)
    # ru_maxrss is in kilobytes on Linux.
    return ChildRun(
        proc.returncode,
        seconds,
        usage.ru_maxrss / 1024.0,
        stdout,
        stderr,
        data,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


def pytest_cmd(*args: str, probe: bool = True) -> list[str]:
    """``python -m pytest`` with the probe plugin, no cache provider (nothing is left over) and
    without hypothesis's plugin (a test-only dependency of this repository)."""
    # hypothesis is only in this project's test environment (not a dependency of pytest-gpo);
    # its plugin imports hypothesis at every session's end (~1 s here), so it is left out.
    cmd = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"]
    if probe:
        cmd += ["-p", "gpo_probe"]
    return cmd + list(args)


def check(run: ChildRun, what: str, *, allowed: Sequence[int] = (0,)) -> ChildRun:
    """Raise with the child's output when it exited with an unexpected code."""
    if run.returncode not in allowed:
        tail = (run.stdout + "\n" + run.stderr)[-4000:]
        raise RuntimeError(f"{what} exited {run.returncode}:\n{tail}")
    return run


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A fresh temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"gpo-bench-{prefix}-") as name:
        yield Path(name)


def best_of(repeats: int, fn: Any) -> Any:
    """Run ``fn()`` ``repeats`` times; return the result with the smallest ``seconds``."""
    results = [fn() for _ in range(repeats)]
    return min(results, key=lambda r: r.seconds if hasattr(r, "seconds") else r["seconds"])


# -- output -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where and when the numbers were taken."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Other work on the machine inflates wall times; the load says how busy it was.
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def common_args(parser: argparse.ArgumentParser) -> None:
    """``--json PATH`` on every benchmark."""
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")


def table(title: str, rows: Sequence[Mapping[str, Any]], *, notes: Sequence[str] = ()) -> None:
    """Print ``rows`` as a GitHub-markdown table under a heading, then the notes."""
    print(f"\n## {title}\n")
    if rows:
        print(tabulate([dict(r) for r in rows], headers="keys", tablefmt="github", floatfmt=".3g"))
    for note in notes:
        print(f"\n{note}")
    sys.stdout.flush()


def write_json(path: str | None, name: str, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` with the benchmark name and machine info to ``path`` (when given)."""
    if not path:
        return
    data = {"benchmark": name, "machine": machine(), **dict(payload)}
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve(sys.argv[2:])
    else:
        sys.exit("usage: harness.py serve [--latency S] [--jitter S] [--rate-limit N]")
