"""The HTML report: one self-contained page (inline CSS, figures as PNG data URIs) per eval, audit, run, repair.

The page answers at a glance what was gained, what was forgotten and whether it is within budget,
then shows the per-probe table, perplexity degradation, canary generations side by side, the
figures, and the details (models, settings, timings). `write_report` writes it as `report.html`
beside the JSON. Reusable pieces for other pages (`forgetless compare`): `figure_html`,
`themed_figure`, `page` and `Section`.
"""

from __future__ import annotations

import base64
import functools
import re
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from forgetless import __version__
from forgetless.paths import write_text_atomic

KINDS = ("eval", "audit", "run", "repair")


@dataclass
class Section:
    """One titled part of a page; `body` is trusted HTML (Markup), plain strings are escaped."""

    title: str
    body: Markup | str
    id: str = ""


@functools.cache
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("forgetless.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def parts() -> Any:
    """The macros of templates/parts.html.j2 (verdict, table, pill, canary, figure, keyvalues, folded)."""
    return environment().get_template("parts.html.j2").module


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])  # the IHDR chunk: width, height


def _close(fig: Any) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")  # only figures made through pyplot are held by it
    if pyplot is not None:
        pyplot.close(fig)


def _img(png: bytes, alt: str, dark: bytes | None = None) -> Markup:
    width, height = _size(png)
    img = Markup('<img src="{}" alt="{}" width="{}" height="{}" loading="eager">').format(
        _data_uri(png), alt, width, height
    )
    if dark is None:
        return img
    source = Markup('<source media="(prefers-color-scheme: dark)" srcset="{}">').format(_data_uri(dark))
    return Markup("<picture>{}{}</picture>").format(source, img)


def figure_html(fig: Any, alt: str, dark: Any = None) -> Markup:
    """A matplotlib figure as an embedded PNG <img>; with `dark`, a <picture> that shows it in dark mode.

    The figures are closed (when pyplot made them) once encoded.
    """
    from forgetless.report.theme import png_bytes

    light = png_bytes(fig)
    _close(fig)
    dark_png = None
    if dark is not None:
        dark_png = png_bytes(dark)
        _close(dark)
    return _img(light, alt, dark_png)


def themed_figure(build: Callable[[Any], Any], alt: str) -> Markup | None:
    """Call `build(theme)` for the light and the dark theme (under each theme's rc settings) and embed both.

    Returns None when `build` has nothing to draw (returns None).
    """
    import matplotlib

    from forgetless.report.theme import THEMES, png_bytes

    pngs = []
    for theme in THEMES:
        with matplotlib.rc_context(theme.rc()):
            fig = build(theme)
            if fig is None:
                return None
            pngs.append(png_bytes(fig))
            _close(fig)
    return _img(pngs[0], alt, pngs[1])


def figures_section(figures: Iterable[tuple[str, str, Callable[[Any], Any]]]) -> Markup | None:
    """(title, caption, build) triples as <figure>s; figures with nothing to draw are left out."""
    out = []
    for title, caption, build in figures:
        picture = themed_figure(build, title)
        if picture is not None:
            out.append(parts().figure(title, picture, caption))
    return Markup("").join(out) if out else None


def has_diagnostics(result: dict[str, Any]) -> bool:
    """Whether a result carries diagnostics: its own `diagnostics` key, or one of its stages'."""
    stages = result.get("stages") or []
    return bool(result.get("diagnostics")) or any(isinstance(s, dict) and s.get("diagnostics") for s in stages)


def diagnostics_section(result: dict[str, Any]) -> Markup | None:
    """The figures of `report/diagnostic_plots.py` (drift by layer, Fisher importance, gradient interference).

    Drawn once per theme, like every figure; skipped when the result has no diagnostics or that module
    is absent.
    """
    if not has_diagnostics(result):
        return None
    try:
        from forgetless.report.diagnostic_plots import diagnostic_figures  # type: ignore[import-not-found]
    except ModuleNotFoundError as error:
        if error.name == "forgetless.report.diagnostic_plots":
            return None  # diagnostics recorded by a newer forgetless, or the plotting module is not installed
        raise
    import matplotlib

    from forgetless.report.theme import THEMES, png_bytes

    drawn = []
    for theme in THEMES:
        with matplotlib.rc_context(theme.rc()):
            figures = diagnostic_figures(result)
            drawn.append([(title, caption, png_bytes(fig)) for title, caption, fig in figures])
            for _, _, fig in figures:
                _close(fig)
    out = [
        parts().figure(title, _img(light, title, dark), caption)
        for (title, caption, light), (_, _, dark) in zip(*drawn, strict=True)
    ]
    return Markup("").join(out) if out else None


def _slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def page(
    title: str,
    sections: Iterable[Section | tuple[str, Any]],
    *,
    subtitle: str = "",
    verdict: Markup | str | None = None,
    created: str = "",
) -> str:
    """A whole self-contained page: title, optional verdict block, then the sections (None bodies skipped)."""
    taken: set[str] = set()
    ready = []
    for s in sections:
        s = s if isinstance(s, Section) else Section(*s)
        if s.body is None:
            continue
        ready.append(Section(s.title, s.body, s.id or _slug(s.title, taken)))
    from forgetless.report.status import status_css

    template = environment().get_template("page.html.j2")
    return template.render(
        title=title,
        subtitle=subtitle,
        verdict=verdict,
        sections=ready,
        version=__version__,
        created=created,
        status_css=Markup(status_css()),  # our own constants, not user text
    )


def render(kind: str, data: dict[str, Any]) -> str:
    """The report page of one result: kind is eval, audit, run or repair."""
    from forgetless.report import pages

    builders = {"eval": pages.eval_page, "audit": pages.audit_page, "run": pages.run_page, "repair": pages.repair_page}
    if kind not in builders:
        raise ValueError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}")
    return builders[kind](data)


def render_eval(data: dict[str, Any]) -> str:
    return render("eval", data)


def render_audit(data: dict[str, Any]) -> str:
    return render("audit", data)


def render_run(data: dict[str, Any]) -> str:
    return render("run", data)


def render_repair(data: dict[str, Any]) -> str:
    return render("repair", data)


def write_report(folder: Path, kind: str, data: dict[str, Any]) -> Path:
    """Render and write `folder/report.html` atomically; returns its path."""
    path = Path(folder) / "report.html"
    write_text_atomic(path, render(kind, data))
    return path
