"""ForgetGuard: hold a transformers Trainer (or a TRL trainer) to a forgetting budget, in one line.

    trainer.add_callback(ForgetGuard(suite="quick", budget="lambada_ppl:10%,5pt", policy="rollback"))

It is `forgetless run`'s guard (`guard.watch.Watch`: verdicts against the limit at a stated false-alarm
rate, warn / stop / rollback to the best check shown within budget, auto cadence, decisions broadcast to
every rank) for a loop it does not own.
What `forgetless run` does around the Watch, the guard does at `on_train_begin`: it finds the
trainer (to log through `Trainer.log`, so `report_to` integrations see the checks), takes its
tokenizer, scores the baseline on the weights training starts from (through the result cache, on
rank 0), and keeps the Watch's state in `output_dir/forgetless-guard/`. Every `trainer.train()`
starts a fresh history; `train(resume_from_checkpoint=...)` keeps the checks up to the checkpoint
and the baseline of the original start (the model then already holds the checkpoint's weights, so
the baseline is read back, not scored again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from forgetless.cache import ResultCache
from forgetless.distributed import barrier, is_main_process
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.evaluate import score_probe, target_probe
from forgetless.guard.budget import Budget, probe_metrics
from forgetless.guard.kl_signal import KLSignal
from forgetless.guard.policies import POLICIES, policy_problem, rollback_to_problem
from forgetless.guard.watch import Watch, WatchSettings
from forgetless.models import LoadedModel
from forgetless.paths import write_json_atomic
from forgetless.probes import Probe, ScoreOptions
from forgetless.registry import unknown_name_error
from forgetless.suites import load_suite
from forgetless.train.trainer_lookup import tokenizer_of, trainer_of

STATE_FOLDER = "forgetless-guard"  # under the trainer's output_dir: watch.json, best.safetensors, baseline.json


class ForgetGuard(TrainerCallback):
    """Score a probe suite while any Trainer trains, and warn, stop or roll back when forgetting passes a budget.

    Args:
        suite: a built-in suite name ("quick", "general") or a suite YAML file.
        budget: limits as `forgetless run` takes them: "5%,2pt,lambada_ppl:10%" (or a list of such).
        policy: "warn" (record breaches), "stop" (stop at the first breach) or "rollback" (restore the best
            earlier weights, see `rollback_to`, then stop). "stop_early" was removed (issue 27).
        every: check every N optimizer steps, or "auto" to keep checks near `overhead` of training time.
        target: the user's task, whose gain picks the rollback point: a file of held-out texts (JSONL with
            `text`, or plain text), or the name of a perplexity probe of the suite. None: the latest in-budget weights.
        overhead: the share of training time the auto cadence allows for checks.
        false_alarm: the chance that a run whose probes stay within their limits is stopped or rolled back,
            over all its checks and probes (default 0.05; see `forgetless.guard.watch`).
        sequential: score each check before the last in parts and stop once every budgeted probe is within
            its limit (see `forgetless.guard.sequential`); False scores every item at every check.
        max_length: truncate probe texts to this many tokens (None: the probes' own settings).
        kl: a `KLSignal` on held-out inputs of the new task: logged as kl/base, and bounded by a `kl:` limit.
        rollback_to: which weights "rollback" restores: "within" (default) the best check shown within budget
            (every budgeted check `within`), else the base weights; "not_over" the best check not shown over whose
            estimated losses are all inside their limits (it may never have been shown within).
        trainer: the Trainer, when it is at hand; otherwise it is found on the first event.
        cache: the result cache (default: $FORGETLESS_CACHE or ~/.cache/forgetless).

    Raises:
        ConfigError: at construction, listing every problem: an unknown policy, a bad `every`, a budget
            naming an unknown probe or using the wrong unit, a missing target.
    """

    def __init__(
        self,
        suite: str = "quick",
        budget: str | list[str] | None = None,
        policy: str = "warn",
        every: int | str = "auto",
        target: str | Path | None = None,
        *,
        overhead: float = 0.10,
        false_alarm: float = 0.05,
        sequential: bool = True,
        max_length: int | None = None,
        kl: KLSignal | None = None,
        rollback_to: str = "within",
        trainer: Any = None,
        cache: ResultCache | None = None,
    ) -> None:
        problems: list[str] = []
        if removed := policy_problem(policy):
            problems.append(f"policy: {removed}")
        elif policy not in POLICIES:
            problems.append(f"policy: {unknown_name_error('policy', str(policy), list(POLICIES))}")
        if wrong := rollback_to_problem(rollback_to):
            problems.append(wrong)
        if not (every == "auto" or (isinstance(every, int) and not isinstance(every, bool) and every >= 1)):
            problems.append(f"every: must be a whole number of steps >= 1 or 'auto' (got {every!r})")
        if not 0 < overhead <= 1:
            problems.append(f"overhead: must be in (0, 1] (got {overhead!r}), e.g. 0.1 for a tenth of training time")
        if not 0 < false_alarm < 1:
            problems.append(f"false_alarm: must be in (0, 1) (got {false_alarm!r}), e.g. 0.05")
        self.suite = load_suite(str(suite))
        self.probes: list[Probe] = list(self.suite.probes)
        self.target = self._target(target, problems)
        self.budget = Budget.parse(budget)  # a limit that does not parse raises here, alone, with its fix
        targets = [self.target] if self.target else []
        problems += self.budget.problems(probe_metrics(self.probes), targets)
        if self.budget.kl_limit and kl is None:
            problems.append(f"budget '{self.budget.kl_limit}' bounds the KL signal: pass kl=KLSignal(held_out_texts)")
        if policy in ("stop", "rollback") and not self.budget:
            problems.append(f"policy '{policy}' needs a budget to hold (e.g. budget='5%,2pt'); without one use 'warn'")
        if problems:
            raise ConfigError("ForgetGuard(...)", problems)
        self.policy, self.every, self.overhead, self.max_length = policy, every, overhead, max_length
        self.false_alarm, self.sequential, self.kl, self.rollback_to = false_alarm, sequential, kl, rollback_to
        self.cache = cache or ResultCache()
        self.trainer = trainer
        self.watch: Watch | None = None  # built at each on_train_begin, when output_dir and the model are known

    def _target(self, target: str | Path | None, problems: list[str]) -> str | None:
        if target is None:
            return None
        named = next((p for p in self.probes if p.config.name == str(target)), None)
        if named is not None:
            if probe_metrics([named]).get(named.config.name) != "perplexity":
                problems.append(
                    f"target: '{target}' is not a perplexity probe; the rollback point is ranked by the target's "
                    "perplexity change, so give a perplexity probe of the suite or a file of held-out texts"
                )
                return None
            # The target is what tuning should change: not a general probe a budget bounds.
            named.config = named.config.model_copy(update={"role": "target"})
            return named.config.name
        if not Path(target).is_file():
            known = ", ".join(p.config.name for p in self.probes)
            problems.append(
                f"target: '{target}' is neither a file of held-out texts nor a probe of suite '{self.suite.name}' "
                f"(probes: {known})"
            )
            return None
        probe = target_probe(str(Path(target).resolve()))
        self.probes.append(probe)
        return probe.config.name

    # -- Trainer events ----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        trainer = trainer_of(self, self.trainer, "ForgetGuard")
        tokenizer = tokenizer_of(trainer, kwargs.get("processing_class"), "ForgetGuard")
        if self.kl is not None and not any(c is self.kl for c in trainer.callback_handler.callbacks):
            trainer.add_callback(self.kl)  # called in this same event, after us: its base is cached before any check
        state_dir = Path(args.output_dir) / STATE_FOLDER
        baseline = self._baseline(model, tokenizer, state_dir, state.global_step) if is_main_process() else None
        barrier()  # other ranks wait here, not in the first step's gradient all-reduce, while rank 0 scores
        settings = WatchSettings(
            probes=self.probes,
            baseline=baseline,  # type: ignore[arg-type]  (rank 0 only checks; other ranks follow its decisions)
            state_dir=state_dir,
            budget=self.budget,
            policy=self.policy,
            rollback_to=self.rollback_to,
            every=None if self.every == "auto" else int(self.every),
            overhead=self.overhead,
            target=self.target,
            max_length=self.max_length,
            false_alarm=self.false_alarm,
            sequential=self.sequential,
            kl=self.kl,
        )
        self.watch = Watch(settings, tokenizer, self.cache)  # reads watch.json: a resumed run keeps its history
        self.watch.attach(trainer)
        self.watch.on_train_begin(args, state, control, model=model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if self.watch is None:
            return control
        save = control.should_save
        control = self.watch.on_step_end(args, state, control, model=model)
        # The Watch asks for a checkpoint at a stop so that `forgetless run --resume` does not train on; a
        # script that saves no checkpoints (save_strategy="no") gets none written behind its back.
        if args.save_strategy == "no":
            control.should_save = save
        return control

    def _baseline(self, model: Any, tokenizer: Any, state_dir: Path, step: int) -> dict[str, Any]:
        """The probes scored on the weights training starts from; saved, and read back on a resume."""
        path = state_dir / "baseline.json"
        names = [p.config.name for p in self.probes]
        if step > 0:
            import json

            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            if saved is None or [p["name"] for p in saved["probes"]] != names:
                raise ForgetlessError(
                    f"training resumes at step {step}, but {path} holds no baseline of these probes "
                    f"({', '.join(names)}) from the start of training; the checkpoint's weights are not the start, "
                    "so it cannot be scored now",
                    "resume with the same ForgetGuard settings and output_dir it started with, or train from the start",
                )
            return saved
        was_training = model.training
        model.eval()
        try:
            lm = LoadedModel(model, tokenizer, "training start", "training")
            options = ScoreOptions(max_length=self.max_length)
            results = [score_probe(lm, probe, self.cache, options)[0] for probe in self.probes]
        finally:
            model.train(was_training)
        baseline = {"probes": [r.to_dict() for r in results]}
        write_json_atomic(path, baseline)
        return baseline

    # -- what the user reads afterwards ----------------------------------------------------------------

    @property
    def history(self) -> dict[str, Any]:
        """Every check (step, values, budget checks, `status` within / inconclusive / over), every breach, what
        was done (`stopped`, with `restored_step` and `restored_why` after a rollback)."""
        return self.watch.history if self.watch else {}

    def report(self) -> dict[str, Any]:
        """What `forgetless run` keeps of its guard: the history, the budget, the policy, the overhead."""
        if self.watch is None:
            raise ForgetlessError(
                "ForgetGuard has no report yet: training has not started", "call trainer.train() first"
            )
        return self.watch.report()
