"""The HTML report from results: verdict first, tables, canary diffs, embedded figures, escaped, self-contained."""

from __future__ import annotations

import re
import sys
import types

import pytest
from markupsafe import Markup

from forgetless.report.diff import side_by_side
from forgetless.report.html import Section, figure_html, page, render, write_report
from tests.report import samples

DARK_SOURCE = '<source media="(prefers-color-scheme: dark)" srcset="data:image/png;base64,'

CASES = {
    # kind: (result, figures: eval scores | audit change | run change, dynamics, R, loss | repair curve, change)
    "eval": (samples.eval_result, 1),
    "audit": (samples.audit_result, 1),
    "run": (samples.run_result, 4),
    "repair": (samples.repair_result, 2),
}


def images(html: str) -> list[str]:
    return re.findall(r"<img [^>]*>", html)


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {kind: render(kind, make()) for kind, (make, _) in CASES.items()}


@pytest.mark.parametrize("kind", list(CASES))
def test_verdict_first_then_tables_and_one_picture_per_figure(rendered, kind) -> None:  # noqa: ANN001
    html = rendered[kind]
    verdict = html.index('id="verdict"')
    assert verdict < html.index("<table") < html.index("<img ")
    expected = CASES[kind][1]
    assert len(images(html)) == expected
    assert html.count(DARK_SOURCE) == expected  # every figure also drawn for dark mode
    assert all('src="data:image/png;base64,iVBOR' in img and 'alt="' in img for img in images(html))
    assert '<table id="probes"' in html


def test_verdict_line_says_gain_forgetting_and_budget(rendered) -> None:  # noqa: ANN001
    line = re.search(r'<p id="verdict" class="(\w*)">(.*?)</p>', rendered["run"]).groups()
    assert line[0] == "inconclusive"  # arc_easy is inconclusive: not over, not proven within either (amber)
    assert line[1].startswith("target target: perplexity 198.19 -&gt; 54.25 (-72.6%)")
    assert (
        "not over budget lambada_ppl:10%,arc_easy:5pt beyond doubt, not shown within it either "
        "(arc_easy inconclusive)" in line[1]
    )
    assert "within budget lambada_ppl" not in line[1]
    assert "the guard rolled back at step 30 in stage new to the weights of step 15" in line[1]
    run = rendered["run"]
    assert "-72.6%" in run and "1 of 3" in run and ">inconclusive<" in run  # the three cards
    assert 'class="pill over"' not in run.split('id="probes"')[1].split("</table>")[0]
    assert "rise +6.8% / limit 10%" in run and "drop +7.0 pt / limit 5 pt" in run  # budget column
    assert "Chosen alpha" in rendered["repair"] and "0.5 (chosen)" in rendered["repair"]
    eval_line = re.search(r'<p id="verdict"[^>]*>(.*?)</p>', rendered["eval"]).group(1)
    assert (
        eval_line == "base-model on suite general: lambada_ppl perplexity 52.94; arc_easy acc 63.0%; "
        "canaries expect_rate 0.0%; target perplexity 198.20"
    )


def test_tables_show_units_intervals_and_degradation(rendered) -> None:  # noqa: ANN001
    audit = rendered["audit"]
    assert "63.0%" in audit and "56.0%" in audit and "-7.0 pt" in audit and "[-14.0, +0.0] pt" in audit
    assert "+3.59 (+6.8%)" in audit and "[+2.56, +4.72]" in audit
    assert '<table id="degradation"' in audit and "+6.8% (95% CI +4.9% to +8.9%)" in audit
    assert '<tr class="secondary">' in audit  # bits per byte below perplexity, muted


@pytest.mark.parametrize("kind", ["audit", "run", "repair"])
def test_canary_generations_side_by_side_with_the_difference_marked(rendered, kind) -> None:  # noqa: ANN001
    html = rendered[kind]
    assert "<del>the old house</del>" in html and "<ins>a blue &lt;sky&gt;</ins>" in html
    assert "a red ball &amp; more" in html  # the unchanged generation, unmarked
    assert "1 of 2 generations identical" in html and "expected text: base \u2717, tuned \u2717" in html


@pytest.mark.parametrize("kind", list(CASES))
def test_text_from_results_is_escaped_and_nothing_is_fetched(rendered, kind) -> None:  # noqa: ANN001
    html = (
        rendered[kind]
        if kind != "eval"
        else render("eval", samples.eval_result({**samples.MODEL, "spec": samples.HOSTILE}))
    )
    assert "<script" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<link|@import|url\(", html)
    assert all(src.startswith("data:") for src in re.findall(r'(?:src|srcset)="([^"]*)"', html))


def test_run_report_stays_small_and_one_stage_renders(rendered) -> None:  # noqa: ANN001
    assert len(rendered["run"].encode()) < 2_000_000
    one = render("run", samples.run_result(stages=1))  # no stage matrix: one stage has no BWT
    assert len(images(one)) == 3 and "Stage matrix R" not in one


def test_write_report_writes_report_html(tmp_path) -> None:  # noqa: ANN001
    path = write_report(tmp_path / "out", "audit", samples.audit_result())
    assert path == tmp_path / "out" / "report.html" and path.read_text().startswith("<!doctype html>")
    assert not list((tmp_path / "out").glob(".*tmp"))
    with pytest.raises(ValueError, match="unknown report kind 'compare'"):
        render("compare", {})


def _fake_figure(title: str):  # noqa: ANN202
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [1, 0])  # colors from the rc settings in force: the theme's
    return title, f"caption of {title}", fig


def test_diagnostics_section_only_with_the_key_and_the_module(monkeypatch) -> None:  # noqa: ANN001
    name = "forgetless.report.diagnostic_plots"
    fake = types.ModuleType(name)
    fake.diagnostic_figures = lambda result: [_fake_figure(k) for k in result["stages"][-1]["diagnostics"]]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, fake)
    data = samples.run_result()
    data["stages"][-1]["diagnostics"] = {"drift by layer": {}, "fisher <importance>": {}}
    html = render("run", data)
    section = html.split('<section id="diagnostics">')[1].split("</section>")[0]
    assert "caption of fisher &lt;importance&gt;" in section
    assert len(images(section)) == 2 and section.count(DARK_SOURCE) == 2  # drawn in both themes too
    assert '<section id="diagnostics">' not in render("run", samples.run_result())
    monkeypatch.setitem(sys.modules, name, None)  # the module absent: the section is skipped, nothing fails
    assert '<section id="diagnostics">' not in render("run", data)


def test_public_helpers_for_other_pages() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    img = figure_html(fig, 'frontier "plot"')
    assert img.startswith('<img src="data:image/png;base64,') and 'alt="frontier &#34;plot&#34;"' in img
    assert plt.get_fignums() == []  # closed once encoded
    html = page(
        "compare <runs>",
        [("Frontier", img), Section("Frontier", Markup("<p>again</p>")), ("Skipped", None), ("Text", "<b>x</b>")],
    )
    assert "<title>compare &lt;runs&gt;</title>" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert '<section id="frontier">' in html and '<section id="frontier-2">' in html and "Skipped" not in html


def test_side_by_side_marks_words_and_escapes() -> None:
    left, right = side_by_side("the cat sat", "the <dog> sat")
    assert left == "the <del>cat</del> sat" and right == "the <ins>&lt;dog&gt;</ins> sat"
    assert side_by_side("same & text", "same & text") == ("same &amp; text", "same &amp; text")
    assert side_by_side("", "new") == ("", "<ins>new</ins>")
    assert side_by_side("the old house", "a blue sky") == ("<del>the old house</del>", "<ins>a blue sky</ins>")
    assert side_by_side("the cat sat", "the sat") == ("the <del>cat</del> sat", "the sat")
