"""`forgetless classify`: an encoder gets a classification head and learns a labelled task; what did it forget?

The measure-mitigate-report loop of `forgetless run`, for encoders: read and check the task's labels
(before any model loads) -> load the encoder with a fresh head -> score the suite (linear probes,
embedding quality) and the head's accuracy on held-out task examples -> fine-tune with the methods ->
score again -> audit (paired before/after per probe). The output folder holds `audit.json` (an audit
with the config, task and training added), `summary.md`, `report.html`, `config.yaml` and the tuned
model (`model/`, a plain folder: LoRA adapters are merged into it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from forgetless.config.classify import ClassifyConfig, LabelledDataConfig
from forgetless.data.sources import load_records, select_items
from forgetless.errors import ForgetlessError
from forgetless.methods import Method, TrainContext
from forgetless.models.loading import LoadedModel
from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.probes.classifier import ClassifierConfig, ClassifierProbe
from forgetless.probes.labelled import Labelled, build_labelled, check_labels, infer_num_labels
from forgetless.train.finetune import FinetuneSettings, settings_from


def read_labelled(data: LabelledDataConfig, base_dir: Path, what: str) -> Labelled:
    records = load_records(data.source, base_dir, what=what)
    indices = select_items(len(records), data.limit, data.seed)
    return build_labelled(records, indices, data.text, data.text_pair, data.label, what)


def prepare_task(config: ClassifyConfig, base_dir: Path) -> tuple[Labelled, Labelled, int, Labelled | None]:
    """(train, held out, head size, keep data); every label problem is raised here, before any model loads."""
    task = config.task
    if task.label is None:
        raise ForgetlessError("task.label is empty: a classification task needs labels", "set task.label")
    data = read_labelled(task, base_dir, "task data")
    num_labels = task.num_labels or infer_num_labels(data.labels or [], "task data")
    check_labels(data.labels or [], num_labels, "task data")
    if task.held_out >= len(data):
        raise ForgetlessError(
            f"task: held_out {task.held_out} leaves no training examples out of {len(data)}",
            "lower task.held_out or add data",
        )
    cut = len(data) - task.held_out
    train, held = data.take(list(range(cut))), data.take(list(range(cut, len(data))))
    keep = read_labelled(config.keep, base_dir, "keep data") if config.keep else None
    if keep is not None and keep.labels is not None:
        check_labels(keep.labels, num_labels, "keep data")
    return train, held, num_labels, keep


def target_probe(held: Labelled, path: Path, name: str, max_length: int) -> ClassifierProbe:
    """The head's accuracy on the held-out task examples, written to `path` as JSONL."""
    rows = [
        {"text": t, **({"text_pair": held.pairs[i]} if held.pairs else {}), "label": held.labels[i]}  # type: ignore[index]
        for i, t in enumerate(held.texts)
    ]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))
    config = ClassifierConfig(
        name=name,
        role="target",
        source=str(path.resolve()),  # the probe resolves relative paths against its own folder
        text="{{ text }}",
        text_pair="{{ text_pair }}" if held.pairs else None,
        label="{{ label }}",
        max_length=max_length,
        description=f"the head's accuracy on {len(rows)} held-out task examples",
    )
    return ClassifierProbe(config, path.parent)


def _settings(config: ClassifyConfig) -> FinetuneSettings:
    return settings_from(config.training, save_steps=None)  # minutes-long runs: no checkpoints (and no --resume)


def resolved(config: ClassifyConfig, methods: list[Method]) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["methods"] = [m.config.model_dump(mode="json") for m in methods]
    return data


def classify(config: ClassifyConfig, methods: list[Method], config_dir: Path) -> dict[str, Any]:
    """Run the whole loop (module docstring); returns the audit with `config`, `task` and `training` added."""
    from transformers import set_seed

    from forgetless.evaluation.audit import build_audit
    from forgetless.evaluation.evaluate import evaluate
    from forgetless.models import load_encoder
    from forgetless.report.html import write_report
    from forgetless.report.markdown import audit_markdown
    from forgetless.suites import load_suite
    from forgetless.train.classify import finetune_classifier, keep_batches

    out: Path = config.output_dir  # type: ignore[assignment]  (set by load_classify_config)
    suite = load_suite(config.suite)
    train, held, num_labels, keep = prepare_task(config, config_dir)
    max_length = config.training.max_length
    target = target_probe(held, out / "data" / f"{config.task.name}_heldout.jsonl", config.task.name, max_length)
    write_text_atomic(out / "config.yaml", yaml.safe_dump(resolved(config, methods), sort_keys=False))
    set_seed(config.training.seed)  # the fresh head's initialization
    lm = load_encoder(config.model, num_labels=num_labels, device=config.device)
    baseline = evaluate(lm, suite, extra_probes=[target])
    context = TrainContext(tokenizer=lm.tokenizer, seed=config.training.seed, state_dir=out / "state")
    if keep is not None:
        context.keep_batches = keep_batches(keep, lm.tokenizer, max_length, len(keep))
    model, training = finetune_classifier(
        lm.model, lm.tokenizer, train, out / "checkpoints", _settings(config), methods, context
    )
    if hasattr(model, "merge_and_unload"):  # a PeftModel: one plain folder that eval and audit open
        model = model.merge_and_unload()
    model.save_pretrained(out / "model")
    lm.tokenizer.save_pretrained(out / "model")
    tuned = LoadedModel(model, lm.tokenizer, str(out / "model"), "folder", {**lm.details, "encoder": True})
    after = evaluate(tuned, suite, extra_probes=[target])
    result = build_audit([*suite.probes, target], baseline, after)
    result.update(
        config=resolved(config, methods),
        task={"name": config.task.name, "num_labels": num_labels, "train": len(train), "held_out": len(held)},
        training=training,
    )
    write_json_atomic(out / "audit.json", result)
    write_text_atomic(out / "summary.md", audit_markdown(result))
    write_report(out, "audit", result)
    return result
