"""Simulate the guard on synthetic runs, through its own decision functions: how often it stops a run
that stayed within budget, how often it catches one that did not, and how often a clean run ends within.

A simulated run has probes of three kinds, each drifting cumulatively from one base, so the checks of
a run are correlated as they are in a real fine-tune (the same items, re-scored as the weights move):

- `accuracy`: n items right with probability `base`. Each item has a fixed uniform draw; by the end of
  the run a share `churn` of the items has flipped, half right -> wrong and half wrong -> right, and
  `drop` more points right -> wrong. At a check at progress g (step / max_steps) the flips of the items
  whose draw falls under g times those rates have happened: the flipped set grows, nested, with g.
- `perplexity`: n documents of `tokens` tokens whose per-token NLL is about 3.3 nats (LAMBADA's 27
  perplexity); each document's NLL is multiplied by exp(g x (mu + sd x e_i)), with e_i a fixed
  standardized draw, left-skewed (a few documents improve a lot: minus a centred gamma with shape 2)
  when `skew`; mu is set so that the corpus perplexity of the population rises `drop` percent at the end.
- `logprob`: each item's gold log-probability moves by g x (-drop + sd x e_i), the same skewed e_i.

At each of `checks` evenly spaced checks every probe is compared with its base by the project's own
paired functions (`paired_accuracy_delta`, `paired_perplexity_delta`, `paired_mean_delta`) and the
budget is checked by `Budget.check` at the look's over-share (`guard.procedure.over_share`) and the run's
within level, as `guard.watch` does. A run is stopped at its first `over`; otherwise its status is the
last check's (`over` never, `within` when every check is within, else `inconclusive`).

`bench/guard_power.py` runs the grids into bench/RESULTS.md; tests/guard/test_false_alarm.py holds the
rate to its bound and the power to its floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from forgetless.guard.budget import Budget
from forgetless.guard.procedure import over_share
from forgetless.metrics import paired_accuracy_delta, paired_mean_delta, paired_perplexity_delta
from forgetless.probes.base import Comparison, ProbeResult

NLL_PER_TOKEN = 3.3  # about LAMBADA's perplexity on a small model (e^3.3 = 27)


@dataclass(frozen=True)
class SimProbe:
    kind: str = "accuracy"  # accuracy | perplexity | logprob
    n: int = 200
    churn: float = 0.1  # accuracy: the share of items flipped by the end, half each way
    drop: float = 0.0  # the true loss at the end: points (accuracy), percent (perplexity), nats (logprob)
    base: float = 0.5  # accuracy: share right before tuning
    sd: float = 0.1  # perplexity: sd of the relative change of a document's NLL; logprob: of the change, nats
    skew: bool = True  # perplexity/logprob: left-skewed per-item changes
    tokens: int = 60  # perplexity: tokens per document


@dataclass
class Scenario:
    probes: list[SimProbe] = field(default_factory=lambda: [SimProbe() for _ in range(6)])
    budget: str = "2pt"
    checks: int = 10
    false_alarm: float = 0.05
    immediate: bool = False  # the drift is at its end value from the first check (the hardest null early)
    previous_rule: bool = False  # the rule before guard.procedure: linear spending, within split like over


@dataclass
class Outcome:
    stopped_at: int | None  # the check (1-based) with the first over, None when the run reached the end
    status: str  # the last check's: over | within | inconclusive


def _skewed(rng: np.random.Generator, n: int, skew: bool) -> np.ndarray:
    if not skew:
        return rng.standard_normal(n)
    return -(rng.gamma(2.0, 1.0, n) - 2.0) / math.sqrt(2.0)  # mean 0, sd 1, long left tail


def _perplexity_mu(drop: float, sd: float, skew: bool) -> float:
    """The mean log-change per document that makes the population's corpus perplexity rise `drop` percent:
    NLL per token x (E[exp(mu + sd e)] - 1) = log(1 + drop / 100), solved exactly with e's moment generating
    function (a sample estimate would leave the null off by a fifth of a standard error and inflate the rate)."""
    # e = -(G - 2) / sqrt(2), G ~ Gamma(2, 1): E[exp(s e)] = exp(sqrt(2) s) (1 + s / sqrt(2))^-2; normal: exp(s^2 / 2)
    mgf = math.exp(math.sqrt(2.0) * sd) * (1.0 + sd / math.sqrt(2.0)) ** -2 if skew else math.exp(sd * sd / 2.0)
    return math.log((1.0 + math.log1p(drop / 100.0) / NLL_PER_TOKEN) / mgf)


class _Drift:
    """One probe's base scores and its fixed per-item draws; `at(g)` is its comparison at progress g."""

    def __init__(self, p: SimProbe, index: int, rng: np.random.Generator) -> None:
        self.p, self.name = p, f"{p.kind}{index}"
        if p.kind == "accuracy":
            self.before = (rng.random(p.n) < p.base).astype(int)
            self.u = rng.random(p.n)
        else:
            self.e = _skewed(rng, p.n, p.skew)
            self.before_nll = np.full(p.n, NLL_PER_TOKEN * p.tokens)  # equal documents: mu is exact

    def at(self, g: float) -> Comparison:
        p = self.p
        result = ProbeResult(self.name, p.kind, "general", "acc", {}, p.n, 0.0)
        if p.kind == "accuracy":
            right = self.before.astype(bool)
            p_right = min(1.0, (p.churn / 2 + p.drop / 100) / max(right.mean(), 1e-9))
            p_wrong = min(1.0, (p.churn / 2) / max(1 - right.mean(), 1e-9))
            flip = np.where(right, self.u < g * p_right, self.u < g * p_wrong)
            after = np.where(flip, 1 - self.before, self.before)
            return Comparison.paired(result, "acc", True, paired_accuracy_delta(self.before, after))
        if p.kind == "perplexity":
            r = g * (_perplexity_mu(p.drop, p.sd, p.skew) + p.sd * self.e)
            tokens = np.full(p.n, float(p.tokens))
            d = paired_perplexity_delta(self.before_nll, self.before_nll * np.exp(r), tokens)
            result.primary = "perplexity"
            return Comparison.paired(result, "perplexity", False, d)
        gold_before = -1.0 - np.abs(self.e)  # any base: only the change is compared
        d = paired_mean_delta(gold_before, gold_before + g * (-p.drop + p.sd * self.e))
        return Comparison.paired(result, "gold_logprob", True, d)


def _comparisons(drifts: list[_Drift], g: float) -> list[Comparison]:
    out = []
    for drift in drifts:
        c = drift.at(g)
        if drift.p.kind == "logprob":  # a choice probe: its accuracy first, the gold log-probability after it
            primary = Comparison(**{**c.__dict__, "metric": "acc", "test": None, "low": None, "high": None})
            out.append(primary)
        out.append(c)
    return out


def simulate_run(rng: np.random.Generator, s: Scenario) -> Outcome:
    budget = Budget.parse(s.budget)
    drifts = [_Drift(p, i, rng) for i, p in enumerate(s.probes)]
    steps = [round((j + 1) * 100 / s.checks) for j in range(s.checks)]
    previous, status = 0, "inconclusive"
    for j, step in enumerate(steps, start=1):
        g = 1.0 if s.immediate else step / 100
        comparisons = _comparisons(drifts, g)
        share, within = over_share(s.false_alarm, step, previous, 100), s.false_alarm
        if s.previous_rule:  # half the rate on the last check, half spread linearly; within split as over is
            share = s.false_alarm / 2 * (1.0 if step >= 100 else (step - previous) / 100)
            within = share / max(1, len(budget.check(comparisons, share)))
        checks = budget.check(comparisons, share, within)
        previous = step
        if any(c.status == "over" for c in checks):
            return Outcome(j, "over")
        status = "within" if checks and all(c.status == "within" for c in checks) else "inconclusive"
    return Outcome(None, status)


@dataclass
class Rates:
    runs: int
    over: float  # stopped at some check (a false alarm when every true loss is within its limit)
    within: float  # ended within
    inconclusive: float

    def error(self, rate: float) -> float:
        """The Monte Carlo standard error of a rate (at least that of one run in `runs`)."""
        return math.sqrt(max(rate * (1 - rate), 1.0 / self.runs) / self.runs)


def rates(s: Scenario, runs: int, seed: int = 0) -> Rates:
    rng = np.random.default_rng(seed)
    outcomes = [simulate_run(rng, s) for _ in range(runs)]
    share = {k: sum(o.status == k for o in outcomes) / runs for k in ("over", "within", "inconclusive")}
    return Rates(runs, share["over"], share["within"], share["inconclusive"])
