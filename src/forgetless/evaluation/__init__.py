"""The evaluation core: score a probe, evaluate a suite, compare two evaluations, build an audit.

Everything above (guard, report, pipeline, the public API) scores and compares models through
this package; it imports only the layers below it (methods, probes, metrics, models, data).
"""
