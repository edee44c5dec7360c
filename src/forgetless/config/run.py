"""The run config: model, general suite, data to keep, methods, training settings, stages.

Everything is validated before any model loads and every problem is reported at once, naming the
field, the value and the fix. Unknown keys are errors. Precedence: defaults < YAML < overrides
(`training.steps=20`, `methods.0.alpha=0.1`). Relative paths: see `config.locations`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgetless.config.data_check import check_streaming, run_data_problems
from forgetless.config.hints import misplaced_hint
from forgetless.config.locations import misplaced, resolve_file_paths, resolve_override
from forgetless.config.model import ModelConfig, ModelSpec, model_problems
from forgetless.config.training_args import check_training, drop_twin
from forgetless.data.sources import Source
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.guard.policies import policy_problem
from forgetless.methods import METHODS
from forgetless.registry import unknown_key_hint, unknown_name_error


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(Strict):
    """Where text comes from and how a record becomes a training example."""

    source: list[Source]
    # messages / prompt_completion: TRL's fields, loss on the assistant turns / the completion (train.chat)
    format: Literal["text", "chat", "messages", "prompt_completion", "pack"] = "text"
    text: str = "{{ text }}"  # template for `text` and `pack`
    prompt: str = "{{ prompt }}"  # templates for `chat`: loss on the response only
    response: str = "{{ response }}"
    limit: int | None = Field(default=None, gt=0)
    held_out: int = Field(
        default=0, ge=0, description="last N records kept out of training, scored as this stage's probe"
    )
    seed: int = 1234
    streaming: bool = Field(default=False, description="read records as training uses them (datasets streaming)")
    shuffle_buffer: int = Field(default=1000, gt=0, description="records a stream is shuffled through (streaming)")

    @model_validator(mode="after")
    def _stream(self) -> DataConfig:
        return check_streaming(self)

    @field_validator("source", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> list[Source]:
        return [Source.parse(v) for v in (value if isinstance(value, list) else [value])]


class TrainingConfig(Strict):
    """forgetless's training settings; `args` passes any transformers.TrainingArguments field through
    (`config.training_args`: a setting may be written either way, `steps` or `args.max_steps`, not both)."""

    steps: int = Field(default=60, gt=0)
    learning_rate: float = Field(default=1e-4, gt=0)
    batch_size: int = Field(default=8, gt=0)
    gradient_accumulation: int = Field(default=1, gt=0)
    max_length: int = Field(default=256, gt=1)
    warmup_steps: int | float = Field(default=0, ge=0, description="steps, or a fraction of the steps below 1")
    weight_decay: float = Field(default=0.0, ge=0)
    save_steps: int = Field(default=50, gt=0, description="checkpoint cadence; a killed run resumes from the last one")
    seed: int = 0
    bf16: bool = False
    report_to: list[str] = Field(
        default_factory=list, description="Trainer integrations to log to: tensorboard, wandb, mlflow ..."
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="any transformers.TrainingArguments field, over forgetless's choices"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _hugging_face(cls, data: Any, handler: Any) -> TrainingConfig:
        return check_training(cls, data, handler)


class StageConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataConfig
    steps: int | None = Field(default=None, gt=0, description="overrides training.steps for this stage")


def positive_or_auto(value: int | str) -> int | str:
    """A cadence: a positive number of steps, or "auto"."""
    if isinstance(value, int) and value < 1:
        raise ValueError("every must be a positive number of steps, or auto")
    return value


Every = Annotated[int | Literal["auto"], AfterValidator(positive_or_auto)]


class GuardConfig(Strict):
    """Watch the run and hold it to a forgetting budget (see forgetless.guard)."""

    watch: bool = Field(default=True, description="score the watched probes during training")
    probes: str | None = Field(default=None, description="suite whose probes are watched; default: the run's suite")
    every: Every = Field(
        default="auto", description="check every N steps; auto keeps checks near `overhead` of training time"
    )
    overhead: float = Field(default=0.10, gt=0, le=1, description="share of training time auto cadence allows")
    budget: str | list[str] | None = Field(default=None, description="e.g. '2pt,5%,lambada:10%,0.05nats'")
    policy: Literal["warn", "stop", "rollback"] = Field(
        default="warn", description="on a breach: record it, stop there, or roll back (see rollback_to) and stop"
    )
    rollback_to: Literal["within", "not_over"] = Field(
        default="within",
        description="rollback restores the best check shown within budget (within), else the base weights; "
        "not_over: the best check not shown over with every estimated loss inside its limit",
    )
    false_alarm: float = Field(
        default=0.05, gt=0, lt=1, description="chance a run within budget is stopped or rolled back, all checks"
    )
    sequential: bool = Field(
        default=True, description="score checks in parts, stopping once every budgeted probe is within its limit"
    )
    kl: bool = Field(
        default=False,
        description="log the KL from the base on each stage's held-out inputs (guard.kl_signal); on with a kl: limit",
    )
    auto_values: list[float] | None = Field(
        default=None, min_length=2, description="--auto's candidate strengths; default: the method's usual range"
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _removed_policy(cls, value: Any) -> Any:
        if problem := policy_problem(value):  # a removed policy: why, and what to use instead
            raise ValueError(problem)
        return value


class DiagnosticsConfig(Strict):
    """What each stage's fine-tune did to the weights (see forgetless.diagnostics); costs in bench/RESULTS.md."""

    drift: bool = Field(default=True, description="||theta - theta_0|| per block and module type, end of each stage")
    importance: bool = Field(default=True, description="diagonal Fisher on kept vs new texts per layer, at the start")
    interference: bool = Field(default=True, description="cosine of new-task and kept gradients during training")
    every: Every = Field(
        default="auto", description="steps between interference points; auto keeps them near `overhead`"
    )
    overhead: float = Field(
        default=0.05, gt=0, le=1, description="share of training time auto cadence allows for interference points"
    )
    texts: int = Field(default=16, ge=1, description="texts per Fisher estimate (kept and new)")
    batch: int = Field(default=4, ge=1, description="texts per gradient at each interference point")
    sample: int = Field(default=10000, ge=0, description="Fisher entries kept for the scatter plot")


class RunConfig(Strict):
    model: ModelSpec = Field(default_factory=lambda: ModelConfig(path="smollm2-135m"))
    output_dir: Path | None = None
    suite: str = "quick"
    keep: DataConfig | None = None
    methods: list[dict[str, Any]] = Field(default_factory=lambda: [{"name": "full"}])
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    stages: list[StageConfig] = Field(min_length=1)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    device: str = "auto"

    @model_validator(mode="after")
    def _unique_stage_names(self) -> RunConfig:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return self


def _format(error: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> list[str]:
    out = []
    for e in error.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        value = "" if e["type"] == "missing" else f" (got {e.get('input')!r:.60})"
        hint = ""
        if model and e["type"] == "extra_forbidden":  # a Hugging Face name in the wrong place, or a typo
            hint = misplaced_hint(e["loc"]) or unknown_key_hint(model, e["loc"])
        out.append(f"{loc or 'config'}: {e['msg']}{value}{hint}")
    return out


def build_methods(entries: list[dict[str, Any]]) -> tuple[list[Any], list[str]]:
    """Instantiate each listed method from its typed config; collect problems instead of stopping."""
    methods, problems = [], []
    names = [e.get("name") if isinstance(e, dict) else None for e in entries]
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            problems.append(f"methods.{i}: each method is a mapping with a `name` (e.g. {{name: l2sp, alpha: 0.01}})")
            continue
        if entry["name"] not in METHODS:
            problems.append(f"methods.{i}.name: {unknown_name_error('method', str(entry['name']), METHODS.names())}")
            continue
        cls = METHODS.get(entry["name"])
        try:
            method = cls(cls.config_class(**entry))
        except ValidationError as error:
            problems.extend(_format(error, f"methods.{i}", cls.config_class))
            continue
        problems.extend(f"methods.{i} ({entry['name']}): {p}" for p in method.validate([n for n in names if n]))
        methods.append(method)
    if len(set(names)) != len(names):
        problems.append(f"methods: a method is listed twice in {names}")
    return methods, problems


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set a dotted key (`training.steps=20`, `methods.0.alpha=0.1`); the value is parsed as YAML."""
    if "=" not in override:
        raise ForgetlessError(f"override '{override}' is not key=value", "write e.g. training.steps=20")
    key, raw = override.split("=", 1)
    parts, node = key.split("."), data
    for i, part in enumerate(parts[:-1]):
        index = int(part) if isinstance(node, list) and part.isdigit() else part
        parent = node
        try:
            node = node[index]
        except (KeyError, IndexError, TypeError):
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ForgetlessError(
                    f"override '{override}': '{'.'.join(parts[: i + 1])}' does not exist", "check the key"
                ) from None
        if isinstance(node, str) and parts[: i + 1] == ["model"]:  # `model: NAME` is short for {path: NAME}
            node = parent["model"] = {"path": node}
        elif not isinstance(node, dict | list):
            where = ".".join(parts[: i + 1])
            raise ForgetlessError(
                f"override '{override}': '{where}' is a value ({node!r}), not a section with keys",
                f"set '{where}=...' itself",
            )
    last = parts[-1]
    value = resolve_override(key, yaml.safe_load(raw), Path.cwd())  # a path on the command line: from the cwd
    if isinstance(node, list) and last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    drop_twin(data, key)  # `training.steps=20` wins over the file's `training.args.max_steps`


def read_config(path: Path, overrides: list[str] | None, keys: str) -> dict[str, Any]:
    """The YAML mapping at `path` with the `key=value` overrides applied; `keys` hints at its fields."""
    if not path.is_file():
        raise ForgetlessError(f"config file '{path}' does not exist", "check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ForgetlessError(f"config file '{path}' is not valid YAML: {error}", "fix the YAML syntax") from error
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"the file must be a mapping ({keys} ...)"])
    resolve_file_paths(data, path.parent)  # a path in the file: from the file's folder (config.locations)
    for override in overrides or []:
        apply_override(data, override)
    return data


def validate_with_methods(cls: type[BaseModel], data: dict[str, Any]) -> tuple[Any, list[Any], list[str]]:
    """(config or None, methods, problems): the config model and every listed method, problems collected."""
    problems: list[str] = []
    config = None
    try:
        config = cls(**data)
    except ValidationError as error:
        problems.extend(_format(error, model=cls))
    entries = data.get("methods", [{"name": "full"}])
    methods, method_problems = build_methods(entries if isinstance(entries, list) else [])
    if not isinstance(entries, list):
        method_problems.append("methods: must be a list of method mappings")
    return config, methods, problems + method_problems


def load_run_config(path: Path, overrides: list[str] | None = None) -> tuple[RunConfig, list[Any]]:
    """Read, override and validate a run config; returns it with its instantiated methods."""
    data = read_config(path, overrides, "model:, stages:, methods:")
    config, methods, problems = validate_with_methods(RunConfig, data)
    problems.extend(check_references(data, path.parent) + misplaced(data, path.parent))
    problems.extend(run_data_problems(data, path.parent))  # empty data, a field the templates name but records lack
    problems.extend(model_problems(data))  # quantization: bitsandbytes, CUDA, an adapter to train
    stages = data.get("stages")
    if any(m.config.name == "lora" for m in methods) and isinstance(stages, list) and len(stages) > 1:
        problems.append(
            "methods: lora trains one adapter; with several stages it would wrap an adapter in another. "
            "Run one stage per config (continue from the saved adapter), or use full-weight methods"
        )
    training = data.get("training") if isinstance(data.get("training"), dict) else {}
    if any(m.config.name == "sam" for m in methods) and training.get("gradient_accumulation", 1) != 1:
        problems.append("methods: sam needs training.gradient_accumulation: 1 (raise batch_size instead)")
    if problems or config is None:
        raise ConfigError(str(path), problems)
    if config.output_dir is None:
        config.output_dir = Path("runs") / path.stem
    return config, methods


def check_references(data: dict[str, Any], base_dir: Path) -> list[str]:
    """Files and suites the config names must exist: found now, not after the model has loaded.

    Works on the raw mapping so these problems are reported even when other fields are invalid.
    """
    from forgetless.suites import load_suite

    problems = []
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    datas = [(f"stages.{i}.data", s.get("data")) for i, s in enumerate(stages) if isinstance(s, dict)]
    datas.append(("keep", data.get("keep")))
    for where, entry in datas:
        sources = entry.get("source") if isinstance(entry, dict) else None
        for j, raw in enumerate(sources if isinstance(sources, list) else [sources] if sources else []):
            try:
                source = Source.parse(raw)
            except ValueError:
                continue  # already reported by the model validation
            if source.path and not (base_dir / Path(source.path).expanduser()).exists():
                problems.append(f"{where}.source.{j}: path '{source.path}' does not exist (relative to {base_dir})")
    try:
        suite = load_suite(str(data.get("suite", "quick")))
    except ForgetlessError as error:
        problems.append(f"suite: {error}")
        suite = None
    guard = data.get("guard") if isinstance(data.get("guard"), dict) else {}
    problems.extend(_budget_problems(guard, suite, stages))
    return problems


def _budget_problems(guard: dict[str, Any], suite: Any, stages: list[Any]) -> list[str]:
    """A budget must parse, name only watched general probes, and use each probe's unit."""
    from forgetless.guard.budget import Budget, probe_metrics
    from forgetless.suites import load_suite

    try:
        budget = Budget.parse(guard.get("budget"))
    except ForgetlessError as error:
        return [f"guard.budget: {error.problem}"]
    if not budget:
        return []
    watched = suite
    if guard.get("probes"):
        try:
            watched = load_suite(str(guard["probes"]))
        except ForgetlessError as error:
            return [f"guard.probes: {error}"]
    if watched is None:
        return []
    targets = [f"stage_{s.get('name')}" for s in stages if isinstance(s, dict)] + ["target"]
    problems = [f"guard.{p}" for p in budget.problems(probe_metrics(watched.probes), targets)]
    if (budget.kl_limit or guard.get("kl")) and any(
        isinstance(s, dict) and not (s.get("data") or {}).get("held_out") for s in stages
    ):
        problems.append(
            "guard: the KL signal (a kl: limit or guard.kl) is measured on each stage's held-out inputs; give every "
            "stage data.held_out (e.g. 32)"
        )
    if guard.get("watch") is False and guard.get("policy", "warn") != "warn":
        problems.append(
            "guard: a stop or rollback policy needs guard.watch: true (the budget is checked while training)"
        )
    return problems
