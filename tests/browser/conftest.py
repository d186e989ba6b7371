"""Fixtures of the page tests: a constructed store whose tables have a known order, its page, a browser.

The browser is Debian's ``chromium`` driven by its ``chromedriver`` through Selenium, headless. Where
either binary is missing the browser tests fail under CI (``CI`` set: ``.ci/run`` installs them, so a
missing browser is a broken CI, never a silent skip) and are skipped with the install command elsewhere.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest

from mmbench.reports.aggregate import aggregate, counted_runs
from mmbench.results import ResultStore
from tests.unit.test_leaderboard import record

INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


def _save(store, run_id, method, seed, values, **changes):
    setting = changes.pop("train_setting", "complete")
    run = record(run_id, method, seed, values, train_setting=setting, **changes)
    sha = ("b" if run.dataset == "mosi-bclstm" else "s") * 64  # one data file per dataset, for the footer
    store.save(replace(run, train_setting=setting, data_sha256=sha))


@pytest.fixture()
def board_store(tmp_path):
    """Three tables, six rows: mosi-synth fixed (rows ae, fusion, mean; by L ACC2 fusion > ae > mean, whose
    L cells are missing; by LVA MAE mean < ae < fusion: neither is the alphabetical order the page starts in),
    mosi-bclstm fixed (fusion, mean), mosi-synth random at rate 0.3 under the ``same`` setting (fusion)."""
    store = ResultStore(tmp_path / "store")
    for seed, shift in ((1111, 0.0), (1112, 0.02)):
        _save(store, f"f{seed}", "fusion", seed, {("L", "acc2_non0"): 0.80 + shift, ("LVA", "acc2_non0"): 0.85 + shift,
                                                  ("L", "mae"): 1.0 + shift, ("LVA", "mae"): 0.8})
    _save(store, "ae1", "ae", 1111, {("L", "acc2_non0"): 0.70, ("LVA", "acc2_non0"): 0.88, ("L", "mae"): 0.9,
                                     ("LVA", "mae"): 0.7})
    _save(store, "m1", "mean", 1111, {("LVA", "acc2_non0"): 0.50, ("LVA", "mae"): 0.6})
    for method, value in (("fusion", 0.70), ("mean", 0.55)):
        _save(store, f"b-{method}", method, 1111, {("L", "acc2_non0"): value, ("LVA", "acc2_non0"): value},
              dataset="mosi-bclstm")
    _save(store, "r1", "fusion", 1111, {("0.3", "acc2_non0"): 0.75}, protocol="random", condition="0.3",
          train_setting="same")
    return store


@pytest.fixture()
def figure_png(tmp_path):
    """A small real PNG drawn by matplotlib, to embed; its name ties it to mosi-synth, as make_figures names them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
    axes.plot([0, 1], [0, 1])
    path = tmp_path / "patterns_mosi-synth_fixed_acc2_non0.png"
    figure.savefig(path)
    plt.close(figure)
    return path


@pytest.fixture()
def page_inputs(board_store, figure_png):
    """(rows, figures, provenance) of the constructed store, as ``mmbench leaderboard --format html`` builds them."""
    from mmbench.reports.page import store_provenance

    rows = aggregate(board_store)
    return rows, [figure_png, figure_png.with_suffix(".pdf")], store_provenance(counted_runs(board_store.runs()), rows)


@pytest.fixture(scope="module")
def browser():
    """Headless chromium with the browser console log kept (goog:loggingPrefs browser ALL)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        missing = ", ".join(name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if not path)
        message = f"the browser test needs {missing}: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run this test, not skip it)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()
