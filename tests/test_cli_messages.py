"""What the CLI prints is plain text: user paths and template hints that look like rich markup survive intact."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from forgetless.cli.main import app

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at 140 columns off a terminal


def test_error_with_markup_in_the_path_is_printed_verbatim(tmp_path: Path) -> None:
    for name in ("run[/b]", "x[red]y", "[bold]"):
        missing = tmp_path / name / "model"
        result = runner.invoke(app, ["eval", "--model", str(missing)])
        assert result.exit_code == 2, result.output
        assert f"error: model path '{missing}' does not exist" in flat(result.output)
        assert "Traceback" not in result.output and "MarkupError" not in result.output


def test_table_title_and_lines_keep_markup_like_model_names(tiny_model: Path, tiny_suite: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny[red]model[b]"
    model.symlink_to(tiny_model, target_is_directory=True)
    out = tmp_path / "out[bold]"
    args = ["eval", "--model", str(model), "--suite", str(tiny_suite), "--out", str(out), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"{model} on suite 'tiny'" in text
    assert f"wrote {out / 'eval.json'}" in text


def test_choices_that_render_no_list_get_a_hint_that_can_be_pasted(
    tiny_model: Path, mc_data: Path, tmp_path: Path
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"""name: empty_choices
probes:
  - name: mc
    kind: choice
    source: {mc_data}
    context: "{{{{ question }}}}"
    choices: "{{{{ choices.text[:0] }}}}"
    gold: "0"
"""
    )
    result = runner.invoke(app, ["eval", "--model", str(tiny_model), "--suite", str(suite), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "probe 'mc', item 0: `choices` rendered to [], not a list of two or more options" in text
    assert (
        "fix: make `choices` render a list: '{{ [option_a, option_b] }}' from two fields, or "
        "'{{ choices.text }}' from a list field; the item's fields are: answerKey, choices, id, question"
    ) in text


def test_validate_prints_yaml_that_parses_whatever_the_path_length(tmp_path: Path) -> None:
    import yaml

    folder = tmp_path / ("a-long-folder-name-" * 8)
    folder.mkdir()
    (folder / "data.txt").write_text("one text\n\nanother text\n")
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump({"stages": [{"name": "s", "data": {"source": "data.txt"}}], "output_dir": "o"}))
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    head, body = result.output.split("\n", 1)
    assert head == f"{config} is valid: 1 stage(s), methods full"
    assert yaml.safe_load(body)["output_dir"] == str(folder / "o")
