"""lm-eval's requests for the `lm_eval` probe, document by document, and what a report says was scored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.probes.generate import GenerationRequest
from forgetless.probes.lmeval_code import template_refused
from forgetless.probes.lmeval_generate import generation_request
from forgetless.probes.lmeval_tasks import TaskPlan
from forgetless.probes.scoring import Request, encode_pair

DATASET_KEYS = {"dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset"}


@dataclass
class LmEvalDoc:
    """One document and its requests, as lm-eval builds them."""

    task: Any  # the lm-eval Task it belongs to
    doc_id: int  # its index in the task's evaluation split
    doc: dict[str, Any]
    instances: list[Any]  # lm-eval Instances, in lm-eval's order
    gold: int = -1  # multiple_choice: the right choice's index; -1 when not one index
    n_choices: int = 0
    requests: list[Any] = field(default_factory=list)  # tokenized (context, continuation) per instance
    tokens: list[int] = field(default_factory=list)  # loglikelihood_rolling: the document's tokens


def set_fewshot(task: Any, num_fewshot: int | None, seed: int) -> None:
    """As lm-eval's simple_evaluate: an explicit count unless the task fixes 0 shots; else the task's, or 0."""
    default = task.get_config("num_fewshot")
    if num_fewshot is not None and default != 0:
        task.set_config(key="num_fewshot", value=num_fewshot)
    elif default is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=seed)


def doc_requests(task: Any, doc_id: int, doc: dict[str, Any]) -> LmEvalDoc:
    """One document's Instances, made as lm-eval's Task.build_all_requests makes them (no chat template)."""
    shots = task.config.num_fewshot or 0
    ctx = task.fewshot_context(
        doc,
        num_fewshot=shots,
        system_instruction=None,
        apply_chat_template=False,
        fewshot_as_multiturn=False,
        chat_template=None,
        gen_prefix=task.doc_to_prefix(doc),
    )
    made = task.construct_requests(
        doc=doc,
        ctx=ctx,
        metadata=(task.config["task"], doc_id, task.config.repeats),
        apply_chat_template=False,
        chat_template=None,
    )
    instances = made if isinstance(made, list) else [made]
    out = LmEvalDoc(task, doc_id, doc, instances)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
        out.n_choices = len(choices)
        if isinstance(gold, str):
            gold = choices.index(gold) if gold in choices else -1
        out.gold = gold if isinstance(gold, int) and 0 <= gold < len(choices) else -1
    return out


def tokenized(d: LmEvalDoc, tokenizer: Any, output: str) -> LmEvalDoc:
    """A copy of the document with its requests in this tokenizer's tokens (lm-eval's encoding, scoring.py)."""
    if output == "loglikelihood_rolling":
        return dataclasses.replace(d, tokens=tokenizer.encode(d.instances[0].args[0], add_special_tokens=False))
    if output == "generate_until":
        return dataclasses.replace(d, requests=[generation_request(tokenizer, *i.args[:2]) for i in d.instances])
    return dataclasses.replace(d, requests=[encode_pair(tokenizer, i.args[0], i.args[1]) for i in d.instances])


def request_material(request: Request | GenerationRequest) -> list[Any]:
    """A request as it keys the result cache: its tokens, and a generation's settings."""
    if isinstance(request, GenerationRequest):
        return [list(request.context), request.max_new_tokens, list(request.until)]
    return [list(request.context), list(request.continuation)]


def describe(plan: TaskPlan, leaves: list[tuple[str, Any, list[Any]]], overrides: dict[str, Any]) -> str:
    """'lm-eval arc_easy test' (+ ', 5-shot', the group's task count, an overridden dataset)."""
    splits = sorted({t.config.test_split or t.config.validation_split for _, t, _ in leaves})
    name = plan.name if plan.kind == "task" else f"{plan.name} ({len(leaves)} tasks)"
    text = f"lm-eval {name} {'/'.join(splits)}"
    shots = sorted({t.config.num_fewshot or 0 for _, t, _ in leaves})
    if shots != [0]:
        text += f", {'/'.join(map(str, shots))}-shot"
    if DATASET_KEYS & set(overrides):
        text += " (dataset overridden)"
    return text


def build_error(name: str, task: str, error: Exception, reachable: bool) -> ForgetlessError:
    message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    if isinstance(error, (ConnectionError, OSError)) or "Hub" in message:
        offline = "" if reachable else " (the Hugging Face hub cannot be reached from here)"
        return ForgetlessError(
            f"probe '{name}': lm-eval task '{task}' could not load its dataset{offline}: {message}",
            "point the task at local files: `overrides: {dataset_path: json, dataset_name: null, dataset_kwargs: "
            "{data_files: {test: my_items.jsonl}}}` (or arrow/parquet/csv files), or copy its YAML with "
            "`dataset_path: json` and give that file as `task`",
        )
    if type(error).__name__ == "SecurityError":  # jinja2.sandbox refused a template while lm-eval built the task
        return template_refused(f"probe '{name}': lm-eval task '{task}'", error)
    return ForgetlessError(f"probe '{name}': lm-eval could not build task '{task}': {message}", "check the task's YAML")
