"""DSPy's ``Evaluate`` over the benchmark cases (run with the peer venv's python, not ours).

    /tmp/peer-dspy/bin/python benchmarks/peers/dspy_eval.py --api-base URL --cases FILE
        --threads 32 --cache off|on [--engine auto|litellm]

``--cache on`` uses DSPy's own cache (memory + disk under ``$DSPY_CACHEDIR``). Prints one JSON
line: seconds inside ``Evaluate``, import seconds, score.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
started = time.perf_counter()
import dspy  # noqa: E402

imported = time.perf_counter() - started


def main() -> None:
    """Run Evaluate once and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--cases", required=True)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--cache", choices=("on", "off"), default="off")
    parser.add_argument("--model", default="openai/bench")
    parser.add_argument(
        "--engine", default="auto", help="auto (DSPy's native HTTP engine when it can) or litellm"
    )
    args = parser.parse_args()

    cache = args.cache == "on"
    dspy.configure_cache(enable_disk_cache=cache, enable_memory_cache=cache)
    lm = dspy.LM(
        args.model,
        api_base=args.api_base,
        api_key=os.environ.get("OPENAI_API_KEY"),
        cache=cache,
        num_retries=0,
        engine=args.engine,
    )
    dspy.configure(lm=lm)

    class Route(dspy.Signature):  # type: ignore[misc]
        """Route this support ticket to one team: billing, technical, account, shipping or
        other. Answer with only the category name."""

        ticket: str = dspy.InputField()
        category: str = dspy.OutputField()

    devset = []
    with open(args.cases, encoding="utf-8") as handle:
        for line in handle:
            case = json.loads(line)
            devset.append(
                dspy.Example(ticket=case["vars"]["ticket"], category=case["expected"]).with_inputs(
                    "ticket"
                )
            )

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> bool:
        return bool(str(prediction.category).strip().lower() == example.category)

    evaluate = dspy.Evaluate(
        devset=devset,
        metric=metric,
        num_threads=args.threads,
        display_progress=False,
        display_table=False,
    )
    start = time.perf_counter()
    result = evaluate(dspy.Predict(Route))
    seconds = time.perf_counter() - start
    print(
        json.dumps({"seconds": seconds, "import_seconds": imported, "score": float(result.score)})
    )


if __name__ == "__main__":
    main()
