"""Which files are promptfoo configs, and the suite-name stem of one (import-light)."""

from __future__ import annotations

from pathlib import Path

#: The file names collected when ini ``gpo_promptfoo`` is true.
CONFIG_NAMES = ("promptfooconfig.yaml", "promptfooconfig.yml")
#: ``checkout.promptfooconfig.yaml``: several configs in one folder.
CONFIG_SUFFIXES = (".promptfooconfig.yaml", ".promptfooconfig.yml")


def is_promptfoo_file(path: Path) -> bool:
    """True for ``promptfooconfig.yaml`` / ``.yml`` and ``*.promptfooconfig.yaml`` / ``.yml``."""
    return path.name in CONFIG_NAMES or path.name.endswith(CONFIG_SUFFIXES)


def config_stem(path: Path, root: Path | None) -> str:
    """The stable stem of a config's suite names: its path from ``root`` without the file name.

    ``evals/translate/promptfooconfig.yaml`` -> ``evals/translate``;
    ``evals/checkout.promptfooconfig.yaml`` -> ``evals/checkout``; a config in ``root`` itself
    -> ``promptfooconfig``. Two configs never share a stem, so their baseline keys never clash.
    """
    folder = path.parent
    if root is not None:
        try:
            folder = path.parent.resolve().relative_to(root.resolve())
        except ValueError:  # outside the root (library use): the folder's own name
            folder = Path(path.parent.name)
    else:
        folder = Path(path.parent.name)
    name = path.name
    for suffix in CONFIG_SUFFIXES:
        if name.endswith(suffix):
            return (folder / name[: -len(suffix)]).as_posix()
    text = folder.as_posix()
    return "promptfooconfig" if text in (".", "") else text
