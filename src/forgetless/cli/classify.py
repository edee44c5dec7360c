"""`forgetless classify CONFIG [KEY=VALUE]...`: the work behind the command, apart from argument parsing."""

from __future__ import annotations

from pathlib import Path


def run_classify(config: Path, overrides: list[str]) -> None:
    from forgetless.config.classify import load_classify_config
    from forgetless.pipeline.classify import classify
    from forgetless.report.rows import AUDIT_HEADER, audit_rows
    from forgetless.report.terminal import print_table, say

    loaded, methods = load_classify_config(config, overrides)  # every problem reported before any model loads
    result = classify(loaded, methods, config.parent)
    names = " + ".join(m.config.name for m in methods)
    print_table(
        f"{loaded.model} with a {result['task']['num_labels']}-way head, {names}", AUDIT_HEADER, audit_rows(result)
    )
    say((result["summary"]["headline"], "bold"))
    folder = loaded.output_dir
    say(f"wrote {folder / 'audit.json'}, {folder / 'summary.md'}, {folder / 'report.html'}, {folder / 'model'}")
