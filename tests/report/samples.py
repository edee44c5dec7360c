"""Small hand-made results in the real schemas (eval, audit, run, repair), with text that must be escaped."""

from __future__ import annotations

import copy
from typing import Any

HOSTILE = "<script>alert('x')</script> & \"quotes\""
MODEL = {"spec": "base-model", "source": "folder", "fingerprint": "f18cfa1b910cac7f", "dtype": "float32"}
TUNED = {**MODEL, "spec": "tuned-model", "fingerprint": "0123456789abcdef"}


def metric(value: float, low: float | None, high: float | None, higher: bool) -> dict[str, Any]:
    return {"value": value, "higher_is_better": higher, "stderr": None, "low": low, "high": high}


def probes(ppl: float, acc: float, target_ppl: float, generations: list[str]) -> list[dict[str, Any]]:
    canary_items = {
        "prompt": [f"Prompt {HOSTILE}", "The cat sees"],
        "generation": generations,
        "hit": [0, int("ball" in generations[1])],
        "has_expect": [False, True],
    }
    return [
        {
            "name": "lambada_ppl",
            "kind": "perplexity",
            "role": "general",
            "primary": "perplexity",
            "metrics": {
                "perplexity": metric(ppl, ppl * 0.9, ppl * 1.1, False),
                "bits_per_byte": metric(1.3, None, None, False),
            },
            "n_items": 100,
            "seconds": 3.2,
            "items": {},
            "cached": False,
        },
        {
            "name": "arc_easy",
            "kind": "choice",
            "role": "general",
            "primary": "acc",
            "metrics": {"acc": metric(acc, acc - 0.09, acc + 0.09, True)},
            "n_items": 100,
            "seconds": 2.1,
            "items": {},
            "cached": True,
        },
        {
            "name": "canaries",
            "kind": "canary",
            "role": "general",
            "primary": "expect_rate",
            "metrics": {"expect_rate": metric(canary_items["hit"][1], 0.0, 1.0, True)},
            "n_items": 2,
            "seconds": 0.5,
            "items": canary_items,
            "cached": False,
        },
        {
            "name": "target",
            "kind": "perplexity",
            "role": "target",
            "primary": "perplexity",
            "metrics": {"perplexity": metric(target_ppl, target_ppl * 0.9, target_ppl * 1.1, False)},
            "n_items": 16,
            "seconds": 0.4,
            "items": {},
            "cached": False,
        },
    ]


def eval_result(model: dict[str, Any] = MODEL, **values: Any) -> dict[str, Any]:
    generations = values.pop("generations", ["a red ball & more", "the old house"])
    return {
        "schema": "forgetless.eval/1",
        "forgetless_version": "0.1.0",
        "created": "2026-11-22T14:00:00+00:00",
        "model": model,
        "suite": {"name": "general", "path": "/suites/general.yaml"},
        "probes": probes(
            values.get("ppl", 52.94), values.get("acc", 0.63), values.get("target_ppl", 198.2), generations
        ),
        "seconds": 12.5,
    }


def comparison(probe: str, role: str, metric_: str, higher: bool, before: float, after: float, **rest: Any) -> dict:
    delta = after - before
    return {
        "probe": probe,
        "role": role,
        "metric": metric_,
        "higher_is_better": higher,
        "before": before,
        "after": after,
        "delta": delta,
        "relative": delta / before if before else None,
        "low": rest.get("low"),
        "high": rest.get("high"),
        "p_value": rest.get("p"),
        "n": rest.get("n", 100),
        "verdict": rest.get("verdict", "kept"),
        "note": rest.get("note", ""),
        "test": rest.get("test"),
    }


def audit_result() -> dict[str, Any]:
    base = eval_result()
    tuned = eval_result(TUNED, ppl=56.53, acc=0.56, target_ppl=54.25, generations=["a red ball & more", "a blue <sky>"])
    comparisons = [
        comparison(
            "lambada_ppl",
            "general",
            "perplexity",
            False,
            52.94,
            56.53,
            low=2.56,
            high=4.72,
            p=0.0,
            verdict="forgot",
            note="perplexity degradation +6.8% (95% CI +4.9% to +8.9%)",
        ),
        comparison("lambada_ppl", "general", "bits_per_byte", False, 1.38, 1.40, verdict="info"),
        comparison("arc_easy", "general", "acc", True, 0.63, 0.56, low=-0.14, high=0.0, p=0.092),
        comparison("canaries", "general", "expect_rate", True, 1.0, 0.0, low=-1.0, high=0.0, p=1.0, n=1),
        comparison(
            "canaries",
            "general",
            "unchanged",
            True,
            1.0,
            0.5,
            verdict="info",
            n=2,
            note="1 of 2 generations identical to the base model's",
        ),
        comparison(
            "target",
            "target",
            "perplexity",
            False,
            198.19,
            54.25,
            low=-160.0,
            high=-130.0,
            p=0.0,
            verdict="improved",
            note="perplexity degradation -72.6% (95% CI -75.0% to -70.1%)",
        ),
    ]
    headline = (
        "target target: perplexity 198.19 -> 54.25 (-72.6%) (improved); 2 of 3 general probes kept within noise "
        f"or improved; lambada_ppl forgot: perplexity 52.94 -> 56.53 (+6.8%) {HOSTILE}"
    )
    return {
        "schema": "forgetless.audit/1",
        "forgetless_version": "0.1.0",
        "created": "2026-11-22T14:05:00+00:00",
        "suite": base["suite"],
        "base": base,
        "tuned": tuned,
        "comparisons": comparisons,
        "summary": {"verdicts": {}, "by_verdict": {}, "headline": headline},
    }


def check(probe: str, metric_: str, change: float, limit: float, unit: str, status: str) -> dict[str, Any]:
    return {
        "probe": probe,
        "metric": metric_,
        "change": change,
        "limit": limit,
        "unit": unit,
        "status": status,
        "low": change - 3.0,
        "high": change + 3.0,
        "level": 0.99,
        "p_over": 0.2,
        "items_to_decide": 400 if status == "inconclusive" else None,
        "over_level": None,
        "within_level": None,
        "p_within": None,
    }


def watch() -> dict[str, Any]:
    def point(step: int, ppl: float, acc: float, target: float, checks: list, status: str) -> dict[str, Any]:
        values = {"lambada_ppl": ["perplexity", ppl], "arc_easy": ["acc", acc], "stage_new": ["perplexity", target]}
        return {
            "step": step,
            "values": values,
            "checks": checks,
            "status": status,
            "target_change": target / 198.19 - 1,
            "seconds": 1.5,
        }

    stopped = {
        "action": "rollback",
        "step": 30,
        "over": [],
        "restore": "best.safetensors",
        "restored_step": 15,
        "restored_why": "restored step 15: the best check shown within budget (most target gain)",
        "why": "lambada_ppl: perplexity rise +15.1% (limit 10%, over)",
    }
    return {
        "points": [
            point(0, 52.94, 0.63, 198.19, [], "within"),
            point(
                15,
                56.53,
                0.56,
                54.25,
                [
                    check("lambada_ppl", "perplexity", 6.8, 10, "percent", "within"),
                    check("arc_easy", "acc", 4.0, 5, "points", "within"),
                ],
                "within",
            ),
            point(
                30,
                60.94,
                0.57,
                40.0,
                [
                    check("lambada_ppl", "perplexity", 15.1, 10, "percent", "over"),
                    check("arc_easy", "acc", 6.0, 5, "points", "inconclusive"),
                ],
                "over",
            ),
        ],
        "events": [stopped],
        "best": {"step": 15, "target_change": -0.726, "status": "within"},
        "stopped": stopped,
        "watch_seconds": 3.0,
        "train_seconds": 10.0,
        "budget": "lambada_ppl:10%,arc_easy:5pt",
        "policy": "rollback",
        "rollback_to": "within",
        "probes": ["lambada_ppl", "arc_easy", "stage_new"],
        "overhead": 0.3,
    }


def run_result(stages: int = 2) -> dict[str, Any]:
    audit = audit_result()
    names = ["old", "new"][:stages]
    stage_evals = []
    for i, _ in enumerate(names):
        stage = copy.deepcopy(audit["tuned"])
        stage["training"] = {
            "train_runtime": 10.0,
            "loss_curve": [[s, 4.0 - 0.1 * s] for s in range(1, 31, 3)],
            "penalty_curve": [[s, 0.01 * s] for s in range(1, 31, 3)] if i == 0 else [],
        }
        if i == len(names) - 1:
            stage["training"]["watch"] = watch()
        stage_evals.append(stage)
    R = [[-5.3, -5.0], [-4.0, -4.9], [-4.2, -3.9]]
    return {
        "schema": "forgetless.run/1",
        "config": {
            "model": "base-model",
            "methods": [{"name": "l2sp", "alpha": 0.01}],
            "stages": [{"name": n} for n in names],
            "guard": {"budget": "lambada_ppl:10%,arc_easy:5pt"},
        },
        "baseline": audit["base"],
        "stages": stage_evals,
        "final": audit,
        # One stage: no earlier stage to forget, so no matrix and no BWT (pipeline.run.transfer_metrics).
        "transfer": {"R": R, "score": "-log perplexity", "average": -4.05, "bwt": -0.2, "forgetting": 0.2, "fwt": 0.1}
        if stages == 2
        else None,
        "guard": {
            "budget": "lambada_ppl:10%,arc_easy:5pt",
            "policy": "rollback",
            "rollback_to": "within",
            "false_alarm": 0.05,
            "stopped": {"stage": names[-1], **watch()["stopped"]},
            "final": [
                check("lambada_ppl", "perplexity", 6.8, 10, "percent", "within"),
                check("arc_easy", "acc", 7.0, 5, "points", "inconclusive"),
            ],
            "status": "inconclusive",
        },
        "world_size": 1,
    }


def repair_result() -> dict[str, Any]:
    def point(alpha: float, change: float, status: str, target: float) -> dict[str, Any]:
        return {
            "alpha": alpha,
            "status": status,
            "checks": [check("lambada_ppl", "perplexity", change, 5, "percent", status)],
            "target_metric": "perplexity",
            "target_change": target,
            "target_gain": -target,
        }

    return {
        "schema": "forgetless.repair/1",
        "forgetless_version": "0.1.0",
        "created": "2026-11-22T14:10:00+00:00",
        "base": MODEL,
        "tuned": TUNED,
        "suite": {"name": "general", "path": "/suites/general.yaml"},
        "budget": "5%",
        "steps": 2,
        "curve": [
            point(0.0, 0.0, "within", 0.0),  # alpha 0: the base, within by definition
            point(0.5, 3.0, "within", -0.5),
            point(0.75, 8.0, "over", -0.65),
            point(1.0, 12.0, "over", -0.73),
        ],
        "accept": "within",
        "rule": "the largest alpha shown within budget (accept: within)",
        "chosen_alpha": 0.5,
        "status": "within",
        "next_alpha": 0.75,
        "next_over_alpha": 0.75,
        "model": "/out/model",
        "summary": "alpha 0.5 is the largest alpha shown within budget 5% (accept: within); alpha 0.75 is over: "
        "lambada_ppl",
        "audit": audit_result(),
    }
