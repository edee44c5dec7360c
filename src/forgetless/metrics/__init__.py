"""Metrics for measuring what fine-tuning changed: intervals, perplexity, transfer."""

from __future__ import annotations

from forgetless.metrics.choice_measures import gold_logprobs, gold_margins
from forgetless.metrics.intervals import (
    PairedDelta,
    accuracy_interval,
    bootstrap_indices,
    bootstrap_interval,
    mcnemar_exact,
    mean_stderr,
    normal_interval,
    paired_accuracy_delta,
    paired_mean_delta,
)
from forgetless.metrics.paired_tests import (
    LogRatioTest,
    PairedBinaryTest,
    PairedMeanTest,
    PairedTest,
    paired_test_from_dict,
    wilson_interval,
)
from forgetless.metrics.perplexity import (
    bits_per_byte,
    degradation_interval,
    log_ratio_interval,
    paired_perplexity_delta,
    perplexity,
    perplexity_degradation,
)
from forgetless.metrics.ranking import paired_spearman_delta, ranks, retrieval_hits, spearman, spearman_interval
from forgetless.metrics.transfer import (
    average_accuracy,
    backward_transfer,
    delta,
    forgetting_measure,
    forgetting_per_task,
    forward_transfer,
    relative_change,
)

__all__ = [
    "LogRatioTest",
    "PairedBinaryTest",
    "PairedMeanTest",
    "PairedTest",
    "paired_test_from_dict",
    "gold_logprobs",
    "gold_margins",
    "wilson_interval",
    "accuracy_interval",
    "PairedDelta",
    "average_accuracy",
    "backward_transfer",
    "bits_per_byte",
    "bootstrap_indices",
    "bootstrap_interval",
    "degradation_interval",
    "delta",
    "log_ratio_interval",
    "forgetting_measure",
    "forgetting_per_task",
    "forward_transfer",
    "mcnemar_exact",
    "mean_stderr",
    "normal_interval",
    "paired_accuracy_delta",
    "paired_mean_delta",
    "paired_perplexity_delta",
    "paired_spearman_delta",
    "perplexity",
    "perplexity_degradation",
    "ranks",
    "relative_change",
    "retrieval_hits",
    "spearman",
    "spearman_interval",
]
