"""GPO's retrieval embeddings: long prompts are embedded whole (in chunks, never silently
truncated at the model's 256 word pieces), and the embedding model can be chosen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_gpo.llm import embeddings
from pytest_gpo.llm.embeddings import LocalEmbedder, cosine, sentence_embedder
from pytest_gpo.optimize.config import OptimizeConfig

pytest.importorskip("sentence_transformers")

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def bundled() -> Iterator[LocalEmbedder]:
    embeddings.clear_embedders()
    embedder = sentence_embedder(None)
    assert isinstance(embedder, LocalEmbedder)
    embedder.load()
    yield embedder
    embeddings.clear_embedders()


def _long_prompt(ending: str) -> str:
    body = " ".join(
        f"Rule {i}: route tickets about topic {i} to the team that owns it." for i in range(40)
    )
    return f"{body} {ending}"


@pytest.mark.slow
def test_prompts_that_differ_past_the_window_embed_differently(bundled: LocalEmbedder) -> None:
    a = _long_prompt("Finally, always answer in French and sign as the billing team.")
    b = _long_prompt("Finally, never answer at all; reply with an empty JSON object.")
    assert len(a.split()) > 500
    window = int(bundled.load().max_seq_length)
    model = bundled.load()
    # what the model alone does: truncation makes the two identical
    raw = model.encode([a, b], normalize_embeddings=True, convert_to_numpy=True)
    assert float(raw[0] @ raw[1]) > 0.99999
    va, vb = bundled.embed([a, b])
    assert cosine(va, vb) < 0.9999
    assert bundled.chunked_texts >= 2 and window == 256
    # a short text is embedded exactly as before (one chunk, the model's own vector)
    short = "Route the ticket."
    (own,) = model.encode([short], normalize_embeddings=True, convert_to_numpy=True).tolist()
    (ours,) = bundled.embed([short])
    assert cosine(own, ours) == pytest.approx(1.0, abs=1e-6)


def test_the_embedding_model_is_a_setting(tmp_path: Path) -> None:
    embeddings.clear_embedders()
    try:
        cfg = OptimizeConfig.from_mapping({"embedding_model": str(tmp_path)})
        embedder = sentence_embedder(cfg.embedding_model)
        assert isinstance(embedder, LocalEmbedder) and embedder.path == tmp_path
        named = sentence_embedder("sentence-transformers/all-mpnet-base-v2")
        assert isinstance(named, LocalEmbedder)
        assert named.hub_name == "sentence-transformers/all-mpnet-base-v2"
        assert sentence_embedder("default") is sentence_embedder(None)
        # an empty folder is no model: a named error, never a traceback
        with pytest.raises(Exception, match="sentence-transformers model"):
            embedder.embed(["x"])
    finally:
        embeddings.clear_embedders()
    with pytest.raises(Exception, match="embedding_model"):
        OptimizeConfig.from_mapping({"embedding_model": ""})


def test_a_missing_embedding_model_is_a_named_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "p.txt").write_text("Route: {{ t }}\n")
    cases = "\n".join(f"  - {{id: c{i}, vars: {{t: 'x{i}'}}, expected: x}}" for i in range(6))
    (pytester.path / "s.gpo.yaml").write_text(
        "name: s\nprompt: p.txt\nthreshold: 0\n"
        f"optimize: {{steps: 1, embedding_model: ./no-such-model}}\ncases:\n{cases}\n"
    )
    pytester.makeini(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    out = result.stdout.str()
    assert result.ret != 0
    assert "optimize.embedding_model" in out and "no-such-model" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
