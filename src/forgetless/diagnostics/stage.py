"""The diagnostics of one stage, wired into training as one TrainerCallback.

`finetune` hands the callback the trainer (`attach`) after the methods have prepared the model and
before the first step, even on `--resume` (the checkpoint is loaded later), so the weights seen
there are the stage's starting weights: the drift's theta_0 is recorded and the importance measured
then. Interference points are taken from `on_train_begin` (step 0) and `on_step_end` (the last step,
and between, every N steps or, by default, as often as keeps them near 5% of the training time), and
saved to `state_dir` so a resumed stage keeps the earlier ones. `report(model)` measures the drift of the
final model (after WiSE-FT or a guard rollback) and returns everything, JSON-ready.

Only rank 0 measures. A diagnostic that fails is reported as `{"error": ...}` with a warning: it
never costs the run its results. Not measured under DeepSpeed or FSDP, whose weights are sharded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from forgetless.diagnostics.drift import parameter_drift
from forgetless.diagnostics.importance import parameter_importance, probe_texts
from forgetless.diagnostics.interference import due, interference_point, make_batch
from forgetless.diagnostics.start import StartWeights
from forgetless.distributed import is_main_process
from forgetless.methods.base import TrainContext
from forgetless.paths import write_json_atomic

log = logging.getLogger(__name__)


def _safely(what: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except Exception as error:  # a diagnostic must not lose a finished fine-tune
        log.warning("diagnostics: %s failed", what, exc_info=True)
        return {"error": f"{type(error).__name__}: {error}"}


def _texts(data: Any, n: int) -> list[str]:
    # A Dataset or a stream (IterableDataset): read only the head.
    head = data[: n * 4] if isinstance(data, list) else [row["text"] for row in data.take(n * 4)]
    return [t for t in head if t.strip()][:n]


class StageDiagnostics(TrainerCallback):
    """Drift, importance and interference of one stage (see forgetless.diagnostics)."""

    def __init__(
        self,
        config: Any,
        context: TrainContext,
        new: Any,
        kept: list[str],
        start_folder: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        """
        Args:
            config: a `DiagnosticsConfig` (drift, importance, interference, every, texts, batch, sample).
            context: the run's TrainContext (tokenizer, max_length, seed, stage).
            new: the stage's training data: a list of texts or a Dataset with `text`.
            kept: texts of what must be kept (the run's `keep`, else the suite's perplexity texts).
            start_folder: a safetensors folder holding the stage's starting weights, if there is one.
            state_dir: where interference points are saved for a resume.
        """
        self.config, self.context, self.new, self.kept = config, context, new, kept
        self.start_folder = start_folder
        self.path = Path(state_dir) / "interference.json" if state_dir else None
        self.start: StartWeights | dict[str, str] | None = None  # a dict: why theta_0 could not be taken
        self.results: dict[str, Any] = {}
        saved = json.loads(self.path.read_text()) if self.path and self.path.is_file() else None
        self.points: list[dict[str, Any]] = saved["points"] if saved else []  # kept only if training resumes
        self.skipped: str | None = None
        self._clock: float | None = None  # training time between steps, points excluded, for the auto cadence
        self._train_seconds, self._steps_timed = 0.0, 0
        self._batches: tuple[dict[str, Any], dict[str, Any]] | dict[str, str] | None = None  # (new, kept), or why not

    def attach(self, trainer: Any) -> None:
        if not is_main_process():
            return
        model, cfg = trainer.model, self.config
        if cfg.drift:
            self.start = _safely("drift", lambda: StartWeights.take(model, self.start_folder))
        if cfg.importance:
            self.results["importance"] = self._importance(model)
        if cfg.interference and self.kept:
            n, length = cfg.batch, self.context.max_length
            new_texts = self.new.select(range(min(n, len(self.new)))) if hasattr(self.new, "select") else self.new[:n]
            tok = self.context.tokenizer
            self._batches = _safely(
                "interference", lambda: (make_batch(new_texts, tok, length), make_batch(self.kept[:n], tok, length))
            )

    def _importance(self, model: Any) -> dict[str, Any]:
        cfg = self.config
        kept, new = _texts(self.kept, cfg.texts), _texts(self.new, cfg.texts)
        if not kept:
            return {"error": "no kept texts (set `keep`, or use a suite with a perplexity probe)"}
        if not new:
            return {"error": "every training text of this stage is empty"}
        return _safely(
            "importance", lambda: parameter_importance(model, self.context, kept, new, cfg.texts, cfg.sample)
        )

    # -- Trainer events -----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if getattr(args, "deepspeed", None) or getattr(args, "fsdp", None):
            self.skipped = "not measured under DeepSpeed or FSDP (sharded weights)"
            self._batches = None
        # A resumed stage keeps the points up to its checkpoint; a fresh one starts over (a file left
        # by an earlier run in the same folder is not this run's).
        self.points = [p for p in self.points if p["step"] <= state.global_step] if state.global_step else []
        if state.global_step == 0:
            self._point(model, 0, state.max_steps)
        self._clock = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        now = time.perf_counter()
        self._train_seconds += now - (self._clock or now)
        self._steps_timed += 1
        self._point(model, state.global_step, state.max_steps)
        self._clock = time.perf_counter()

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.points and self.points[-1]["step"] < state.global_step:  # stopped early (the guard)
            self._point(model, state.global_step, state.global_step)

    def _point(self, model: Any, step: int, max_steps: int) -> None:
        if self._batches is None or isinstance(self._batches, dict) or model is None:
            return
        last = self.points[-1] if self.points else None
        # The first step includes warm-up: the auto cadence waits for two timed steps.
        step_seconds = self._train_seconds / self._steps_timed if self._steps_timed >= 2 else None
        timing = {"point_seconds": last["seconds"] if last else None, "step_seconds": step_seconds}
        if not due(
            step, max_steps, last["step"] if last else 0, self.config.every, **timing, overhead=self.config.overhead
        ):
            return
        point = _safely("interference", lambda: interference_point(model, step, *self._batches))
        if "error" in point:
            self._batches = point  # failed once: stop trying, report why
            return
        self.points.append(point)
        if self.path:
            write_json_atomic(self.path, {"points": self.points})

    # -- results ------------------------------------------------------------------------------------

    def report(self, model: Any) -> dict[str, Any]:
        """Everything measured this stage, JSON-ready: {"drift": ..., "importance": ..., "interference": ...}."""
        cfg, out = self.config, dict(self.results)
        if cfg.drift:
            start = self.start
            out["drift"] = start if isinstance(start, dict) else _safely("drift", lambda: parameter_drift(model, start))
            self.start = None
        if cfg.interference:
            out["interference"] = self._interference()
        return out

    def _interference(self) -> dict[str, Any]:
        if isinstance(self._batches, dict) and not self.points:
            return self._batches  # the error
        if not self.kept:
            return {"error": "no kept texts (set `keep`, or use a suite with a perplexity probe)"}
        if self.skipped:
            return {"error": self.skipped}
        return {
            "definition": "cos(grad of the new-task loss, grad of the kept loss) over trainable weights; "
            "< 0: the new task's update undoes the kept",
            "texts": self.config.batch,
            "points": self.points,
            "seconds": sum(p["seconds"] for p in self.points),
        }


def stage_diagnostics(
    config: Any,
    context: TrainContext,
    new: Any,
    probes: list[Any],
    start_folder: Path | None = None,
    state_dir: Path | None = None,
) -> StageDiagnostics | None:
    """The callback for one stage, or None when every diagnostic is off. Kept texts: `context.keep_texts`,
    else the texts of the perplexity probes among `probes` (read only on rank 0, only if needed)."""
    if not (config.drift or config.importance or config.interference):
        return None
    kept = list(context.keep_texts)
    if not kept and (config.importance or config.interference) and is_main_process():
        kept = _safely("kept texts", lambda: probe_texts(probes, context.tokenizer, max(config.texts, config.batch)))
        kept = kept if isinstance(kept, list) else []
    return StageDiagnostics(config, context, new, kept, start_folder, state_dir)


def start_folder(model: Any, previous: Path | None) -> Path | None:
    """Where a stage's starting weights are on disk: the previous stage's saved model, else the folder
    the model was loaded from (`config._name_or_path`); None when neither is a folder."""
    if previous is not None:
        return previous
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    return Path(name) if name and Path(name).is_dir() else None
