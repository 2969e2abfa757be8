"""One frozen :class:`Settings` per session: command line > environment > ini > default.

Every option is declared once in :data:`OPTIONS`; the plugin registers the command-line flags
and ini keys from it, and :func:`resolve` reads them back. A bad value is a
:class:`~pytest_gpo.errors.ConfigError` that names where it came from (``--gpo-concurrency``,
``GPO_CACHE``, ``ini gpo_timeout``), so a user knows which of the three places to fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm.limits import DEFAULT_MAX_TOKENS
from pytest_gpo.llm.pricing import ModelPrice
from pytest_gpo.llm.types import CacheMode
from pytest_gpo.settings.options import OPTIMIZE_MODES, OPTIONS, Option

__all__ = ["OPTIMIZE_MODES", "OPTIONS", "Option", "Settings", "resolve"]


@dataclass(frozen=True)
class Settings:
    """Resolved settings of a session (see :data:`OPTIONS` for meaning and defaults)."""

    rootdir: Path
    model: str | None = None
    optimizer_model: str | None = None
    judge_model: str | None = None
    cache: CacheMode = "rw"
    cache_dir: str = ".gpo/cache"
    cache_url: str | None = None
    allowed_paths: str | None = None
    router: str | None = None
    baseline: str = ".gpo/baseline.json"
    concurrency: int = 8
    timeout: float = 60.0
    max_attempts: int = 6
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    retry_local_timeouts: bool = False
    repeat: int | None = None
    report: str | None = None
    html: str | None = None
    show_all: bool = False
    update_baseline: bool = False
    optimize: str | None = None
    dry_run: bool = False
    preset: str | None = None
    steps: int | None = None
    candidates: int | None = None
    max_calls: int | None = None
    max_cost: float | None = None
    prices: Mapping[str, ModelPrice] | None = None
    trusted_params: frozenset[str] | None = None
    seed: int = 0
    # optimizer requests (E)
    optimizer_params: Mapping[str, Any] | None = None
    embedding_model: str | None = None
    promptfoo: bool = False
    #: where each value came from, e.g. {"model": "env GPO_MODEL"}
    sources: Mapping[str, str] | None = None

    def path(self, value: str) -> Path:
        """A configured path made absolute against the rootdir."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.rootdir / p

    @property
    def allowed_folders(self) -> tuple[Path, ...]:
        """The folders besides the rootdir that suite files may read (``gpo_allowed_paths``)."""
        parts = (self.allowed_paths or "").split(os.pathsep)
        return tuple(self.path(p.strip()) for p in parts if p.strip())

    @property
    def cache_path(self) -> Path:
        """Absolute directory of the file cache."""
        return self.path(self.cache_dir)

    @property
    def router_path(self) -> Path | None:
        """Absolute path of the litellm Router settings file, when one is configured."""
        return self.path(self.router) if self.router else None

    @property
    def baseline_path(self) -> Path:
        """Absolute path of the baseline file."""
        return self.path(self.baseline)

    @property
    def report_path(self) -> Path | None:
        """Absolute report path; optimizing defaults it to ``.gpo/report.md``."""
        if self.report:
            return self.path(self.report)
        if self.optimize:
            return self.path(".gpo/report.md")
        return None

    @property
    def html_path(self) -> Path | None:
        """Absolute HTML report path; optimizing defaults it to ``.gpo/report.html``."""
        if self.html:
            return self.path(self.html)
        if self.optimize:
            return self.path(".gpo/report.html")
        return None


def resolve(
    *,
    rootdir: Path,
    cli: Mapping[str, Any],
    ini: Callable[[str], Any],
    env: Mapping[str, str] | None = None,
    ini_source: str = "ini",
) -> Settings:
    """Resolve every option: command line, then environment, then ini, then default.

    ``cli`` maps option names to parsed command-line values (``None`` when not given);
    ``ini`` returns the raw ini value of a key ('' or None when unset).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        raw: Any = None
        source = "default"
        if cli.get(opt.name) not in (None, False):
            raw, source = cli[opt.name], opt.flag or opt.name
        elif opt.env and env.get(opt.env, "").strip():
            raw, source = env[opt.env], f"environment variable {opt.env}"
        elif opt.ini:
            ini_value = ini(opt.ini)
            if ini_value not in (None, "", []):
                raw, source = ini_value, f"{ini_source} key {opt.ini}"
        if raw is None:
            values[opt.name] = opt.default
            continue
        if isinstance(raw, bool):
            values[opt.name] = raw
        elif isinstance(raw, str):
            try:
                values[opt.name] = opt.parse(raw)
            except ValueError as exc:
                detail = str(exc)
                if "invalid literal" in detail or "could not convert" in detail:
                    detail = "must be a number"
                raise ConfigError(
                    f"{source}: bad value {raw!r}: {detail}",
                    fix=f"set a valid value ({opt.help})",
                ) from None
        else:
            values[opt.name] = raw
        sources[opt.name] = source
    return Settings(rootdir=rootdir, sources=sources, **values)
