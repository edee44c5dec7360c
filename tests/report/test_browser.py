"""A real run's report.html in a real browser: Debian's Chromium, headless, driven by selenium.

`make install` (and `make test`) install Chromium and ChromeDriver from Debian when they are missing;
this test fails, rather than skips, without them. The run is the guard's rollback setup, so the page
has forgetting dynamics and a guard action to draw.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from tests.guard.guard_setup import write_guarded

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FIGURES = 3  # the final change, the dynamics of the one stage, the loss (one stage has no matrix R, no BWT)


@pytest.fixture(scope="module")
def run_dir(old_base, mc_data, tmp_path_factory) -> Path:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("report-run")
    config = write_guarded(folder, old_base, mc_data, {"budget": "5%", "policy": "rollback", "every": 1})
    result = CliRunner().invoke(app, ["run", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "report.html" in " ".join(result.output.split())
    return folder / "run"


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.access(p, os.X_OK) or shutil.which(Path(p).name))]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: `make install` installs Debian's chromium and chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never try to download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,2000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def images(driver) -> list[dict]:  # noqa: ANN001
    return driver.execute_script(
        "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
        "width: i.naturalWidth, height: i.naturalHeight, current: i.currentSrc.slice(-200)}))"
    )


def test_run_report_opens_in_chromium(browser, run_dir) -> None:  # noqa: ANN001
    results = json.loads((run_dir / "results.json").read_text())
    assert results["guard"]["stopped"]["action"] == "rollback"  # the page has a guard action to show
    browser.get((run_dir / "report.html").as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    shown = images(browser)
    assert [i["alt"] for i in shown][:FIGURES] == [
        "What changed, probe by probe",
        "Forgetting dynamics: stage new",
        "Training loss",
    ]  # then the diagnostics' figures, when the run recorded some
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in shown)
    verdict = browser.find_element("id", "verdict").text
    assert verdict.startswith("target stage_new: perplexity") and "within budget 5%" in verdict
    assert re.search(r"the guard rolled back at step \d+ in stage new to the weights of step \d+", verdict)
    assert browser.execute_script("return document.querySelectorAll('#probes tbody tr').length") >= 3


def test_dark_scheme_shows_the_dark_figures(browser, run_dir) -> None:  # noqa: ANN001
    browser.get((run_dir / "report.html").as_uri())
    light = [i["current"] for i in images(browser)]
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        browser.get((run_dir / "report.html").as_uri())
        dark = images(browser)
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert all(i["complete"] and i["width"] > 0 for i in dark)
    assert all(d["current"] != li for d, li in zip(dark, light, strict=True))  # the <source> for dark was chosen
    assert background == "rgb(13, 17, 23)"
