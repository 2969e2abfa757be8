"""Secrets are never printed: URL user-info and query strings, Redis URLs, header values,
keys under any variable spelling. A property over generated URLs, headers and variable names,
and one end-to-end run with a sentinel secret in every place a user can put one.
See docs/reliability.md#secrets.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer
from secret_scan import last_word_responder, leaks, run_pytest, written_files

from pytest_gpo.llm.redact import install_log_redaction, remember_params, scrub

SECRET = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789", min_size=8, max_size=24
).map(lambda s: "Zq" + s)
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def urls(draw: Any) -> tuple[str, list[str]]:
    """A URL with a password and query values (the secrets), in some scheme and shape."""
    scheme = draw(st.sampled_from(["http", "https", "redis", "rediss", "unix", "HTTP"]))
    password = draw(SECRET)
    user = draw(st.one_of(st.just(""), NAME))
    host = draw(st.sampled_from(["127.0.0.1", "localhost", "cache.internal", "[::1]"]))
    port = draw(
        st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"), st.just(":notaport"))
    )
    path = draw(st.sampled_from(["", "/", "/v1", "/0", "/v1/chat/completions"]))
    values = draw(st.lists(SECRET, min_size=0, max_size=3))
    keys = draw(st.lists(NAME, min_size=len(values), max_size=len(values)))
    query = "&".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    url = f"{scheme}://{user}:{password}@{host}{port}{path}" + (f"?{query}" if query else "")
    return url, [password, *values]


@st.composite
def messages(draw: Any) -> tuple[str, list[str]]:
    url, secrets = draw(urls())
    frame = draw(
        st.sampled_from(
            [
                "Cannot connect to host {u}",
                "error calling '{u}': 404",
                '{{"api_base": "{u}", "status": 500}}',
                "ValueError: bad URL <{u}>",
                "POST {u} failed (timeout)",
            ]
        )
    )
    return frame.format(u=url), secrets


@PROPERTY
@given(messages())
def test_url_user_info_and_query_values_are_always_redacted(case: tuple[str, list[str]]) -> None:
    text, secrets = case
    clean = scrub(text)
    assert not [s for s in secrets if s in clean], clean


@PROPERTY
@given(
    st.sampled_from(["X-Api-Key", "x-sentinel", "Authorization", "api-key", "Cookie"]),
    SECRET,
    st.sampled_from(["extra_headers", "headers"]),
)
def test_header_values_are_redacted_in_errors_and_logs(name: str, value: str, key: str) -> None:
    params = {key: {name: value}}
    assert value not in scrub(f"sent {name}: {value} and got 400", params)
    remember_params(params)  # what the client does before litellm logs its kwargs
    assert value not in scrub(f"litellm kwargs: {{'{key}': {{'{name}': '{value}'}}}}")


@PROPERTY
@given(
    st.sampled_from(
        [
            "OPENAI_API_KEY",
            "openai_api_key",
            "OpenAI_Api_Key",
            "API_KEY",
            "api_key",
            "APIKEY",
            "MY_SERVICE_TOKEN",
            "my_service_token",
            "DB_PASSWORD",
            "db_password",
            "SECRET",
            "CLIENT_SECRET",
            "AZURE_OPENAI_KEY",
        ]
    ),
    SECRET,
)
def test_keys_in_variables_of_any_spelling_are_redacted(name: str, value: str) -> None:
    with mock.patch.dict(os.environ, {name: value}):
        assert value not in scrub(f"401: invalid key {value}; check {name}")


def test_every_log_record_is_scrubbed_also_from_child_loggers(caplog: Any) -> None:
    install_log_redaction()
    url = "http://user:Zqpassw0rdXY@127.0.0.1:9/v1?code=ZqQueryValue1"
    remember_params({"api_key": "ZqRouterKey123"})
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("openai._base_client").debug("Request options: %s", {"url": url})
        logging.getLogger("some.http.client").info('HTTP Request: POST %s "HTTP/1.1 404"', url)
        logging.getLogger("some.user.module").warning("key ZqRouterKey123 in use")
    text = caplog.text
    assert "POST http://***@127.0.0.1:9/v1?***" in text
    for secret in ("Zqpassw0rdXY", "ZqQueryValue1", "ZqRouterKey123"):
        assert secret not in text


# -- end to end --------------------------------------------------------------------------------

S_ENV = "sk-SENTINELENV-7d1e4b9a2c"  # OPENAI_API_KEY
S_LOWER = "SENTINELLOWER-5b2c8e1f"  # a lowercase-named token variable
S_BASE_PW = "SENTINELBASEPW-3f9a1c"  # OPENAI_BASE_URL user-info
S_BASE_Q = "SENTINELBASEQ-8e4d2a"  # OPENAI_BASE_URL query value
S_ROUTER = "sk-SENTINELROUTER-6c3b9f1a"  # a literal key in the router file
S_INI_PW = "SENTINELINIPW-2a7e5d"  # trusted api_base user-info (allowed by the ini)
S_HEADER = "SENTINELHEADER-9f1b4c"  # a trusted extra header's value
S_REDIS = "SENTINELREDIS-4e8a2f"  # GPO_CACHE_URL password
SENTINELS = [S_ENV, S_LOWER, S_BASE_PW, S_BASE_Q, S_ROUTER, S_INI_PW, S_HEADER, S_REDIS]
#: httpx sends a URL's user-info as Basic auth: its base64 must not show up either
BASIC = base64.b64encode(f"suser:{S_INI_PW}".encode()).decode()
NEEDLES = [*SENTINELS, "SENTINEL", BASIC]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _suite(name: str, model: str, params: str, prompt: str = "p.txt") -> str:
    """A suite file; suites optimized together need a prompt file each."""
    cases = "\n".join(f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}" for i in range(6))
    return (
        textwrap.dedent(f"""\
        name: {name}
        prompt: {prompt}
        model: {model}
        params: {params}
        threshold: 0
        optimize: {{steps: 1, candidates: 2, retrieval: none}}
        cases:
        """)
        + cases
        + "\n"
    )


def test_sentinel_secrets_in_every_place_reach_no_file_and_no_output(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "out").mkdir(parents=True)
    with OpenAIServer(
        responder=last_word_responder,
        fault_rates={"429": 0.1, "500": 0.1, "400": 0.05},
        retry_after=0.01,
        leak_key_in_errors=True,
        seed=5,
    ) as server:
        port = server.port
        (project / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        for name in ("trusted", "routed", "env_key"):  # optimized together: a prompt each
            (project / f"{name}.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        (project / "pytest.ini").write_text(
            "[pytest]\ngpo_timeout = 5\ngpo_router = router.yaml\n"
            "gpo_trusted_params = api_base extra_headers\n",
            encoding="utf-8",
        )
        (project / "router.yaml").write_text(
            "model_list:\n"
            + "".join(
                f"  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n"
                f"      api_base: {server.base_url}\n      api_key: {S_ROUTER}\n"
                for name in ("routed", "optimizer")
            ),
            encoding="utf-8",
        )
        trusted_base = f"http://suser:{S_INI_PW}@127.0.0.1:{port}/v1"
        suites = {
            "trusted": _suite(
                "trusted",
                "openai/echo",
                f"{{api_base: '{trusted_base}', extra_headers: {{X-Sentinel: {S_HEADER}}}}}",
                "trusted.txt",
            ),
            "routed": _suite("routed", "routed", "{temperature: 0}", "routed.txt"),
            "env_key": _suite(
                "env_key", "openai/echo", f"{{api_base: '{server.base_url}'}}", "env_key.txt"
            ),
            # OPENAI_BASE_URL with a query string: the SDK's URLs break, every call fails
            "env_base": _suite("env_base", "openai/echo", "{temperature: 0}"),
        }
        for name, text in suites.items():
            (project / f"{name}.gpo.yaml").write_text(text, encoding="utf-8")
        env = {
            "OPENAI_API_KEY": S_ENV,
            "my_service_token": S_LOWER,
            "OPENAI_BASE_URL": f"http://buser:{S_BASE_PW}@127.0.0.1:{port}/v1?code={S_BASE_Q}",
            "GPO_CACHE_URL": f"redis://:{S_REDIS}@127.0.0.1:{_free_port()}/0",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "GITHUB_STEP_SUMMARY": str(project / "out" / "step_summary.md"),
        }
        inputs = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
        common = ["--log-file-level", "DEBUG", "--log-level", "DEBUG", "-rA"]
        outputs = [
            run_pytest(
                project,
                env,
                "--gpo-report",
                "out/report.md",
                "--junitxml",
                "out/junit.xml",
                "-o",
                "junit_logging=all",
                "--gpo-update-baseline",
                "--log-file",
                "out/run.log",
                "--gpo-max-attempts",
                "3",
                *common,
            ),
            run_pytest(
                project,
                env,
                "--gpo-optimize",
                "--gpo-optimizer-model",
                "optimizer",
                "--gpo-report",
                "out/optimize.md",
                "--junitxml",
                "out/optimize.xml",
                "--log-file",
                "out/optimize.log",
                "-k",
                "trusted or routed or env_key",
                *common,
            ),
            # a cache URL that cannot be parsed: a clear error, no traceback, no password
            run_pytest(
                project,
                {**env, "GPO_CACHE_URL": f"redis://:{S_REDIS}@127.0.0.1:notaport/0"},
                "--junitxml",
                "out/badurl.xml",
                *common,
            ),
        ]
        headers = server.headers_seen
    # every sentinel really was in play: sent to the server, or in the failing URLs
    seen = [{k.lower(): v for k, v in h.items()} for h in headers]
    assert any(h.get("x-sentinel") == S_HEADER for h in seen), seen[:2]
    assert any(h.get("authorization") == f"Bearer {S_ROUTER}" for h in seen)
    assert any(h.get("authorization") == f"Bearer {S_ENV}" for h in seen)
    assert any(h.get("authorization") == f"Basic {BASIC}" for h in seen)  # the ini's user-info
    assert "you sent Bearer ***" in outputs[0][0]
    assert "gpo_cache_url" in outputs[2][0] and "Traceback" not in outputs[2][0]
    written = written_files(project, inputs)
    names = {p.name for p in written}
    assert {"report.md", "report.json", "junit.xml", "run.log", "optimize.log"} <= names, names
    assert any(".gpo/runs" in str(p) for p in written), names  # optimizer checkpoints
    found = leaks(project, written, outputs, NEEDLES)
    assert not found, found
    # the scan can fail: the inputs the user wrote do hold their secrets
    assert S_ROUTER.encode() in (project / "router.yaml").read_bytes()


S_ECHO_KEY = "sk-SENTINELECHO-1c9e7b3d"  # OPENAI_API_KEY, echoed back by the model
S_ECHO_TOKEN = "SENTINELECHOTOKEN-6a2f8d"  # MY_SERVICE_TOKEN, echoed back by the model


def _echoing_responder(body: dict[str, Any]) -> str:
    """A model that knows the user's secrets: every answer and every candidate holds them."""
    text = " ".join(str(m.get("content", "")) for m in body["messages"])
    leak = f"key {S_ECHO_KEY} token {S_ECHO_TOKEN}"
    if "<START>" in text:
        return f"<START>Say ({leak}) the word {{{{ word }}}}<END>"
    word = body["messages"][-1]["content"].split()[-1]
    return word if "the word" in text else f"{word} {leak}"  # the candidate does better


def test_secrets_a_model_echoes_reach_no_file_no_output_and_no_prompt(tmp_path: Path) -> None:
    """A provider that answers with the user's key (shown it, or hostile) and an optimizer
    whose candidates carry it: the exact values are replaced as each answer arrives, so the
    cache, the reports, JUnit, the checkpoints, the terminal and the prompt file written back
    never hold them."""
    project = tmp_path / "project"
    project.mkdir()
    with OpenAIServer(responder=_echoing_responder) as server:
        (project / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        (project / "pytest.ini").write_text("[pytest]\ngpo_timeout = 5\n", encoding="utf-8")
        (project / "echo.gpo.yaml").write_text(
            _suite("echo", "openai/echo", "{temperature: 0}").replace(
                "optimize: {steps: 1, candidates: 2, retrieval: none}",
                "optimize: {steps: 1, candidates: 2, retrieval: none, max_words: 40}",
            ),
            encoding="utf-8",
        )
        env = {
            "OPENAI_API_KEY": S_ECHO_KEY,
            "MY_SERVICE_TOKEN": S_ECHO_TOKEN,
            "OPENAI_BASE_URL": server.base_url,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        inputs = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
        outputs = [
            run_pytest(project, env, "--junitxml", "gate.xml", "-rA", "--gpo-show-all"),
            run_pytest(
                project,
                env,
                "--gpo-optimize=write",
                "--gpo-optimizer-model",
                "openai/optimizer",
                "--junitxml",
                "optimize.xml",
            ),
        ]
        headers = server.headers_seen
    assert any(h.get("Authorization") == f"Bearer {S_ECHO_KEY}" for h in headers)
    assert "key *** token ***" in outputs[0][0]  # the answers were shown, without the values
    written = written_files(project, inputs)
    names = {p.name for p in written}
    assert {"gate.xml", "optimize.xml", "report.json", "checkpoint.json"} <= names, names
    assert any(".gpo/cache" in str(p) for p in written), names
    found = leaks(project, written, outputs, [S_ECHO_KEY, S_ECHO_TOKEN])
    assert not found, found
    # the candidate (with its secrets replaced) won and was written back
    written_prompt = (project / "p.txt").read_text(encoding="utf-8")
    assert written_prompt == "Say (key *** token ***) the word {{ word }}\n"


def _encoded(secret: str, how: str, before: str, after: str) -> str:
    import base64
    from urllib.parse import quote

    if how == "base64":
        return base64.b64encode(f"{before}{secret}{after}".encode()).decode()
    if how == "base64url":
        return base64.urlsafe_b64encode(f"{before}{secret}{after}".encode()).decode()
    import codecs

    if how in ("base64 of reversed", "base64 of upper"):
        value = secret[::-1] if how.endswith("reversed") else secret.upper()
        return base64.b64encode(f"{before}{value}{after}".encode()).decode()
    every = "".join(f"%{b:02x}" for b in secret.encode())
    raw = secret.encode()
    half = len(raw) // 2
    inner = {
        "percent and x escapes mixed": "".join(f"%{b:02X}" for b in raw[:half])
        + "".join(f"\\x{b:02x}" for b in raw[half:]),
        "every other byte percent-encoded": "".join(
            f"%{b:02X}" if i % 2 else chr(b) for i, b in enumerate(raw)
        ),
        "html references without ;": "".join(f"&#{b}" for b in raw),
        "0x hex": " ".join(f"0x{b:02x}" for b in raw),
        "comma hex": ",".join(f"{b:02x}" for b in raw),
        "hex a line each": "\n".join(f"{b:02x}" for b in raw),
        "hex of upper": secret.upper().encode().hex(),
        "U escapes": "".join(f"\\U{b:08x}" for b in raw),
        "u{} escapes": "".join(f"\\u{{{b:x}}}" for b in raw),
        "three times percent-encoded": every.replace("%", "%25").replace("%", "%25"),
        "full-width": "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in secret),
        "zero-width inside": secret[:4] + "\u200b" + secret[4:],
        "base64 across lines": "\n".join(
            (lambda e: [e[:8], e[8:]])(base64.b64encode(raw).decode())
        ),
        "plain": secret,
        "upper": secret.upper(),
        "reversed": secret[::-1],
        "rot13": codecs.encode(secret, "rot13"),
        "percent": quote(secret, safe=""),
        "every byte percent-encoded": every,
        "twice percent-encoded": every.replace("%", "%25"),
        "hex": secret.encode().hex(),
        "spaced hex": " ".join(f"{b:02x}" for b in secret.encode()),
        "x escapes": "".join(f"\\x{b:02x}" for b in secret.encode()),
        "u escapes": "".join(f"\\u{ord(c):04x}" for c in secret),
        "html references": "".join(f"&#{ord(c)};" for c in secret),
    }[how]
    if how == "html references without ;":  # "&#50" then "0" would read as "&#500"
        return f"{before} {inner} {after}"
    return f"{before}{inner}{after}"


@PROPERTY
@given(
    SECRET,
    st.sampled_from(
        [
            *("plain", "upper", "reversed", "rot13", "percent", "every byte percent-encoded"),
            *("twice percent-encoded", "hex", "spaced hex", "x escapes", "u escapes"),
            *("html references", "base64", "base64url", "base64 of reversed", "base64 of upper"),
            *("percent and x escapes mixed", "every other byte percent-encoded", "0x hex"),
            *("html references without ;", "comma hex", "hex a line each", "hex of upper"),
            *("U escapes", "u{} escapes", "three times percent-encoded", "full-width"),
            *("zero-width inside", "base64 across lines"),
        ]
    ),
    NAME,
    NAME,
)
def test_a_secret_a_model_writes_plainly_or_lightly_encoded_is_taken_out_of_its_answer(
    secret: str, how: str, before: str, after: str
) -> None:
    """The value of a secret variable in an answer, as is, in another case, reversed, rot13,
    percent-encoded (every byte, every other byte, up to three times, mixed with ``\\x``
    escapes), hex (spaced, ``0x``, comma- or line-separated, of the upper case), as
    ``\\x``/``\\u``/``\\U``/``\\u{}`` escapes or HTML references (with or without
    ``;``), full-width, with a zero-width space inside, or base64 at any byte alignment (across
    lines, of the value reversed or upper-case too) inside a longer text: it is replaced where
    it stands or the answer is withheld, and no reading of what is left holds it."""

    from pytest_gpo.llm.redact import holds_secret, scrub_answer

    encoded = _encoded(secret, how, before, after)
    with mock.patch.dict(os.environ, {"ACME_SERVICE_TOKEN": secret}):
        clean = scrub_answer(f"Sure: {encoded} (done)")
        # replaced where it stands, or the answer withheld: no reading of it holds the value
        assert "***" in clean and not holds_secret(clean), clean
    assert secret.lower() not in clean.lower() and secret[::-1] not in clean


@PROPERTY
@given(SECRET, st.text(max_size=200))
def test_an_answer_without_the_secret_is_left_as_it_is(secret: str, answer: str) -> None:
    """Decoding to look for secrets never changes an answer that does not hold one: JSON,
    percent signs, HTML entities, hex colours, escapes and any other text stay byte for
    byte."""
    from pytest_gpo.llm.redact import scrub_answer, secret_forms

    samples = [
        answer,
        '{"total": "100%", "ok": true, "note": "a &amp; b \\u00e9"}',
        "colours #ff00aa 0x1f 0x20 de ad be ef 00 11, 50%25 off, &#169; 2026",
        "C:\\\\x86\\\\Users, \\\\U0001F600 and %s/%d",
    ]
    with mock.patch.dict(os.environ, {"ACME_SERVICE_TOKEN": secret}):
        for text in samples:
            if any(form.lower() in text.lower() for form in secret_forms(secret)):
                continue  # it holds a form (a long key's last two thirds, say): a real hit
            assert scrub_answer(text) == text
