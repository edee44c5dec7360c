"""`forgetless repair`: the largest WiSE-FT alpha within a forgetting budget, for full weights and LoRA.

The tiny "fine-tune" (every weight plus noise 0.3) raises held-out perplexity far beyond noise, so
interpolating back toward the base trades that rise away; budgets are set from numbers measured
in each test, so the tests do not depend on the exact curve.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import forgetless.pipeline.repair as repair_module
from forgetless.cache import ResultCache
from forgetless.cli.main import app
from forgetless.errors import ForgetlessError
from forgetless.evaluation.audit import compare_evals
from forgetless.evaluation.evaluate import evaluate
from forgetless.guard.budget import Budget, over_budget
from forgetless.models import LoadedModel, load_model
from forgetless.pipeline.repair import bisect, repair
from forgetless.suites import Suite, load_suite


@pytest.fixture
def suite(tmp_path: Path, mc_data: Path, text_data: Path) -> Suite:
    """Held-out perplexity (what noise destroys) and a multiple-choice probe; no generation, to stay fast."""
    path = tmp_path / "suite.yaml"
    path.write_text(
        f"""name: tiny-repair
probes:
  - {{name: docs_ppl, kind: perplexity, source: {text_data}}}
  - name: mc
    kind: choice
    source: {mc_data}
    context: "Question: {{{{ question }}}}\\nAnswer:"
    choices: "{{{{ choices.text }}}}"
    gold: "{{{{ choices.label.index(answerKey) }}}}"
"""
    )
    return load_suite(str(path))


def rise(base: LoadedModel, model: torch.nn.Module, tokenizer, suite: Suite) -> float:  # noqa: ANN001
    """docs_ppl's perplexity rise (%) of `model` against `base`, scored without the repair code."""
    lm = LoadedModel(model, tokenizer, "probe", "folder")
    before, after = evaluate(base, suite), evaluate(lm, suite)
    ppl = next(c for c in compare_evals(suite.probes, before, after) if c.probe == "docs_ppl")
    return 100 * ppl.relative


@torch.no_grad()
def lerped(base: LoadedModel, tuned: LoadedModel, alpha: float) -> torch.nn.Module:
    model = copy.deepcopy(tuned.model)
    weights = dict(base.model.named_parameters())
    for name, p in model.named_parameters():
        p.copy_(torch.lerp(weights[name], p, alpha))
    return model


def checks_at(base: LoadedModel, tuned: LoadedModel, alpha: float, suite: Suite, budget: Budget, level: float) -> list:
    lm = LoadedModel(lerped(base, tuned, alpha), tuned.tokenizer, f"alpha {alpha}", "folder")
    cache = ResultCache(reuse=False)
    return budget.check(
        compare_evals(suite.probes, evaluate(base, suite, cache=cache), evaluate(lm, suite, cache=cache)), level
    )


def test_bisect_finds_the_last_alpha_within_and_the_first_over() -> None:
    seen = []

    def within(alpha: float) -> bool:
        seen.append(alpha)
        return alpha <= 0.3

    assert bisect(within, 4) == (0.25, 0.3125)
    assert seen == [1.0, 0.5, 0.25, 0.375, 0.3125]
    assert bisect(lambda a: True, 4) == (1.0, None)
    assert bisect(lambda a: False, 3) == (0.0, 0.125)


def test_repair_meets_the_budget_and_one_step_more_does_not(tiny_model, tiny_tuned, suite, text_data, tmp_path) -> None:  # noqa: ANN001
    from forgetless.evaluation.evaluate import target_probe

    base, tuned = load_model(str(tiny_model), device="cpu"), load_model(str(tiny_tuned), device="cpu")
    half, full = (
        rise(base, lerped(base, tuned, 0.5), tuned.tokenizer, suite),
        rise(base, tuned.model, tuned.tokenizer, suite),
    )
    assert 0 < half < full  # the setting the test needs: the fine-tune forgot, half of it forgot less
    # The limit at half the fine-tune's rise: the fine-tune is over it beyond doubt, the base within.
    budget = Budget.parse(f"docs_ppl:{half:.4f}%")
    steps = 3
    result = repair(
        str(tiny_model),
        str(tiny_tuned),
        suite,
        budget,
        out=tmp_path / "out",
        steps=steps,
        device="cpu",
        target=target_probe(str(text_data)),
        accept="not_over",  # the rule this test measures: the largest alpha no probe is shown over at
    )
    alpha, over = result["chosen_alpha"], result["next_over_alpha"]
    assert result["accept"] == "not_over" and result["next_alpha"] == over
    assert 0 < alpha < 1 and over == alpha + 1 / 2**steps
    assert len(result["curve"]) == steps + 2
    # Scored again from scratch at the level of each look (5% over alpha 1 and 3 midpoints): the
    # chosen alpha is not over the budget, one step more is.
    level = 0.05 / (steps + 1)
    assert all(c["level"] == pytest.approx(1 - 2 * level) for p in result["curve"][1:] for c in p["checks"])
    assert not over_budget(checks_at(base, tuned, alpha, suite, budget, level))
    assert over_budget(checks_at(base, tuned, over, suite, budget, level))
    # The target's change is reported at every point: none at alpha 0, the fine-tune's at alpha 1.
    changes = {p["alpha"]: p["target_change"] for p in result["curve"]}
    assert changes[0.0] == 0 and changes[1.0] == pytest.approx(full / 100)  # the target is docs_ppl's text
    assert all(p["target_gain"] == -p["target_change"] for p in result["curve"])
    assert f"alpha {alpha:g} is the largest alpha not shown over budget" in result["summary"]
    chosen = next(p for p in result["curve"] if p["alpha"] == alpha)
    assert result["status"] == chosen["status"] in ("within", "inconclusive")  # never over
    assert ("not shown within budget either" in result["summary"]) == (result["status"] == "inconclusive")
    # The written model reloads and is exactly the interpolation.
    repaired = load_model(str(tmp_path / "out" / "model"), device="cpu")
    expected = dict(lerped(base, tuned, alpha).named_parameters())
    for name, p in repaired.model.named_parameters():
        assert torch.equal(p, expected[name]), name
    saved = json.loads((tmp_path / "out" / "repair.json").read_text())
    assert saved["schema"] == "forgetless.repair/1" and saved["chosen_alpha"] == alpha
    assert saved["budget"] == str(budget) and saved["audit"]["schema"] == "forgetless.audit/1"
    assert {c["probe"] for c in saved["curve"][1]["checks"]} == {"docs_ppl"}
    markdown = (tmp_path / "out" / "repair.md").read_text()
    assert f"| {alpha:g} (chosen) |" in markdown and "docs_ppl (limit" in markdown
    assert "Chosen by the largest alpha not shown over budget (accept: not-over" in markdown
    # A second run scores nothing again: every alpha's results come from the cache.
    again = repair(
        str(tiny_model), str(tiny_tuned), suite, budget, out=tmp_path / "again", steps=steps, device="cpu"
    )  # accept within (the default): the largest alpha shown within, never above the not-over one
    assert again["accept"] == "within" and again["chosen_alpha"] <= alpha
    assert again["status"] == "within" and all(
        p["status"] != "within" for p in again["curve"] if p["alpha"] > again["chosen_alpha"]
    )
    assert all(p["cached"] for p in again["audit"]["base"]["probes"])
    assert again["audit"]["tuned"]["probes"][0]["cached"] == (again["chosen_alpha"] in changes)


def test_loose_budget_keeps_the_fine_tune(tiny_model, tiny_tuned, suite, tmp_path) -> None:  # noqa: ANN001
    result = repair(str(tiny_model), str(tiny_tuned), suite, "1000000%,100pt", out=tmp_path / "out", device="cpu")
    assert result["chosen_alpha"] == 1.0 and result["next_over_alpha"] is None
    assert [p["alpha"] for p in result["curve"]] == [0.0, 1.0]
    assert "nothing needed repair" in result["summary"]
    tuned = load_model(str(tiny_tuned), device="cpu")
    assert load_model(str(tmp_path / "out" / "model"), device="cpu").fingerprint == tuned.fingerprint


def make_adapter(tiny_model: Path, folder: Path, dora: bool = False) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    # On a random tiny model only the output layer moves perplexity much: adapt it beside q and v.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "lm_head"], use_dora=dora)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)  # a LoRA fine-tune that moved far enough to forget
    model.save_pretrained(folder)
    return folder


def test_lora_adapter_is_repaired_by_scaling_b(tiny_model, suite, tmp_path) -> None:  # noqa: ANN001
    adapter = make_adapter(tiny_model, tmp_path / "adapter")
    base, tuned = load_model(str(tiny_model), device="cpu"), load_model(str(adapter), device="cpu")
    original = {n: p.detach().clone() for n, p in tuned.model.named_parameters() if "lora_B" in n}
    full = rise(base, tuned.model, tuned.tokenizer, suite)
    with torch.no_grad():
        for name, p in tuned.model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.5)
    half = rise(base, tuned.model, tuned.tokenizer, suite)
    assert 0 < half < full
    result = repair(
        str(tiny_model),
        str(adapter),
        suite,
        f"docs_ppl:{half + 0.01:.4f}%",
        out=tmp_path / "out",
        steps=2,
        device="cpu",
        accept="not_over",  # the limit sits just above alpha 0.5's rise: not over there, not shown within
    )
    alpha = result["chosen_alpha"]
    assert 0.5 <= alpha < 1 and result["tuned"]["source"] == "adapter"
    repaired = load_model(str(tmp_path / "out" / "model"), device="cpu")
    assert repaired.source == "adapter"
    b = {n: p for n, p in repaired.model.named_parameters() if "lora_B" in n}
    assert b.keys() == original.keys()
    for name, p in b.items():
        torch.testing.assert_close(p, original[name] * alpha, rtol=0, atol=0)


def other_model(tiny_model: Path, folder: Path, hidden: int = 32, extra_token: bool = False) -> Path:
    """A copy of the tiny model with another hidden size, or with one more token in its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    shutil.copytree(tiny_model, folder)
    if extra_token:
        tok = AutoTokenizer.from_pretrained(tiny_model)
        tok.add_tokens(["<extra>"])
        tok.save_pretrained(folder)
    if hidden != 32:
        config = AutoModelForCausalLM.from_pretrained(tiny_model).config
        config.hidden_size = hidden
        LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("case", "budget", "message"),
    [
        ("same", "", "no forgetting budget given; give --budget"),
        ("same", "nope:2pt", "'nope' (probes: docs_ppl, mc)"),
        ("same", "docs_ppl:2pt", "'docs_ppl' is measured by perplexity, which a limit in points cannot bound; use %"),
        ("same", "2pt,mc:5%", "'mc' is measured by acc, which a limit in percent cannot bound; use pt"),
        ("same", "target:5%", "'target' is the target"),
        ("hidden", "5%", "parameter(s) differ in name or shape, e.g. model.embed_tokens.weight is"),
        ("tokenizer", "5%", "the tokenizers differ"),
        ("dora", "5%", "a DoRA adapter cannot be interpolated linearly"),
    ],
)
def test_clear_errors_before_any_scoring(
    case, budget, message, tiny_model, suite, text_data, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    from forgetless.evaluation.evaluate import target_probe

    def no_scoring(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("repair scored a model before reporting the error")

    monkeypatch.setattr(repair_module, "evaluate", no_scoring)
    if case == "same":
        monkeypatch.setattr(repair_module, "load_model", no_scoring)  # budget errors come before any loading
        tuned = tiny_model
    elif case == "dora":
        tuned = make_adapter(tiny_model, tmp_path / "dora", dora=True)
    else:
        tuned = other_model(
            tiny_model, tmp_path / "other", hidden=48 if case == "hidden" else 32, extra_token=case == "tokenizer"
        )
    with pytest.raises(ForgetlessError) as error:
        repair(
            str(tiny_model),
            str(tuned),
            suite,
            budget,
            target=target_probe(str(text_data)),
            out=tmp_path / "out",
            device="cpu",
        )
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_cli_repair_prints_the_curve_and_writes_the_report(tiny_model, tiny_tuned, suite, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "repair"
    args = [str(tiny_model), str(tiny_tuned), "--suite", str(suite.path), "--budget", "docs_ppl:5%", "--steps", "2"]
    result = CliRunner().invoke(app, ["repair", *args, "--out", str(out), "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "repair.json").read_text())
    assert data["schema"] == "forgetless.repair/1" and data["steps"] == 2
    assert "docs_ppl (limit 5%)" in result.output and "(chosen)" in result.output
    assert data["summary"].split(";")[0] in " ".join(result.output.split())
    assert (out / "model" / "config.json").is_file() and (out / "repair.md").is_file()
    bad = CliRunner().invoke(app, ["repair", str(tiny_model), str(tiny_tuned), "--suite", str(suite.path)])
    assert bad.exit_code == 2 and "give --budget" in bad.output


def test_a_quantized_base_is_refused_with_the_full_precision_fix(tiny_model, suite, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    def no_loading(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("repair loaded a model before refusing a quantized checkpoint")

    quantized = tmp_path / "quantized"
    shutil.copytree(tiny_model, quantized)
    config = json.loads((quantized / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quantized / "config.json").write_text(json.dumps(config))
    with monkeypatch.context() as patch:
        patch.setattr(repair_module, "load_model", no_loading)
        with pytest.raises(ForgetlessError) as caught:
            repair(str(quantized), str(tiny_model), suite, "docs_ppl:5%", out=tmp_path / "out", device="cpu")
    assert f"'{quantized}' is quantized (bitsandbytes): repair interpolates weights in full precision" in str(
        caught.value
    )
    assert "fix: pass the full-precision model it was quantized from as BASE (for a QLoRA run" in str(caught.value)
    # A model bitsandbytes loaded quantized (its flag, as transformers sets it) is refused after loading too.
    real = repair_module.load_model

    def flagged(spec, **load):  # noqa: ANN001, ANN003, ANN202
        loaded = real(spec, **load)
        loaded.model.is_loaded_in_4bit = True
        return loaded

    monkeypatch.setattr(repair_module, "load_model", flagged)
    monkeypatch.setattr(repair_module, "evaluate", no_loading)
    with pytest.raises(ForgetlessError, match=r"is quantized \(bitsandbytes 4bit\)"):
        repair(str(tiny_model), str(tiny_model), suite, "docs_ppl:5%", out=tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()
