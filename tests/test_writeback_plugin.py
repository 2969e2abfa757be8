"""Write-back through `pytest --gpo-optimize`: a prompt file two suites share, and
pytest-gpo's own files, are never rewritten (with and without pytest-xdist)."""

from __future__ import annotations

import pytest
from router_suites import router_project

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("xdist", [False, True], ids=["one-process", "xdist"])
def test_a_prompt_file_two_suites_use_is_not_rewritten_for_one_of_them(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    """Found under -n 2: the suite whose candidate was accepted rewrote the shared file, judged
    on its own held-out cases only. Now neither suite is optimized (an error before any call,
    naming the other suite and how to select one by its file); selecting one, it is written."""
    project = router_project(
        pytester, {"first_router": "prompts/shared.txt", "ticket_router": "prompts/shared.txt"}
    )
    before = (project.path / "prompts" / "shared.txt").read_text(encoding="utf-8")
    args = ["-p", "no:cacheprovider", "--gpo-optimize", *(["-n", "2"] if xdist else [])]
    result = project.runpytest_subprocess(*args)
    out = result.stdout.str()
    assert result.ret == 1, out
    assert (project.path / "prompts" / "shared.txt").read_text(encoding="utf-8") == before
    assert out.count("optimization not started: prompts/shared.txt is also read by") == 2
    assert "fix: optimize one of them by its file: pytest suites/first_router.gpo.yaml" in out
    assert "model calls: 0" in out, out
    assert "prompt file(s) rewritten" not in out, out
    selected = project.runpytest_subprocess(*args, "-k", "first_router")
    assert selected.ret == 1, selected.stdout.str()
    assert (project.path / "prompts" / "shared.txt").read_text(encoding="utf-8") != before


def test_a_prompt_in_pytest_gpos_own_folder_is_refused(pytester: pytest.Pytester) -> None:
    """A suite whose prompt was .gpo/report.md had it reported as rewritten, then overwritten by
    the report; now the write is refused as the tool's own file."""
    project = router_project(pytester, {"first_router": ".gpo/report.md"})
    result = project.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "first_router: .gpo/report.md not written: it is pytest-gpo's own file" in out, out
    assert "prompt file(s) rewritten" not in out


@pytest.mark.parametrize("whose", ["another suite's", "its own"])
def test_a_prompt_that_is_a_system_message_file_is_not_optimized(
    pytester: pytest.Pytester, whose: str
) -> None:
    """Found by a tester: a suite whose prompt file was another suite's (or its own)
    ``system:`` file had it rewritten, changing that system message silently."""
    project = router_project(pytester, {"first_router": "prompts/first.txt"})
    suite = project.path / "suites" / "first_router.gpo.yaml"
    if whose == "its own":
        suite.write_text(
            suite.read_text(encoding="utf-8") + "system: ../prompts/first.txt\n", encoding="utf-8"
        )
    else:
        other = suite.read_text(encoding="utf-8").replace("name: first_router", "name: reader")
        other = other.replace("../prompts/first.txt", "../prompts/reader.txt")
        (project.path / "prompts" / "reader.txt").write_text("Say {{ ticket }}\n", "utf-8")
        (project.path / "suites" / "reader.gpo.yaml").write_text(
            other + "system: ../prompts/first.txt\n", encoding="utf-8"
        )
    before = (project.path / "prompts" / "first.txt").read_bytes()
    result = project.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "first_router" in out and "(its system message) in this run" in out, out
    expected = "a file each" if whose == "its own" else "optimize one of them by its file"
    assert expected in out
    assert (project.path / "prompts" / "first.txt").read_bytes() == before
