"""The leaderboard page in a real headless browser (Debian's chromium via Selenium): it loads with no
console error, the filters change the rows shown, a header click sorts, the figures load, nothing is
fetched from the network; and the same checks catch a broken page. Run by ``pytest -m browser``."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from mmbench.reports import page_assets
from mmbench.reports.page import write_page
from tests.browser.checks import (choose, click_header, console_errors, external_references, images_loaded,
                                  open_page, row_labels, shown_figures, sorts_best_first, visible_rows)

pytestmark = pytest.mark.browser

ALL_ROWS = ["fusion", "mean", "ae", "fusion", "mean", "fusion"]  # bclstm fixed, synth fixed, synth random
SYNTH_FIXED = "table-2"


def build(page_inputs, tmp_path):
    rows, figures, provenance = page_inputs
    return write_page(rows, tmp_path / "page", figures, provenance)


def shown_headers(driver, table_id: str) -> list[str]:
    return [h.text for h in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead button.sort") if h.is_displayed()]


def test_page_loads_filters_sorts_and_needs_no_network(browser, page_inputs, tmp_path):
    open_page(browser, build(page_inputs, tmp_path))
    assert console_errors(browser) == []
    assert visible_rows(browser) == ALL_ROWS
    synth_figure = ["patterns mosi-synth fixed acc2 non0"]
    assert shown_figures(browser) == synth_figure
    choose(browser, "dataset", "mosi-bclstm")
    assert shown_figures(browser) == []  # a figure follows the dataset filter too
    choose(browser, "dataset", "mosi-synth")
    assert shown_figures(browser) == synth_figure
    for name, value, expected in (("dataset", "mosi-bclstm", ["fusion", "mean"]),
                                  ("protocol", "random", ["fusion"]), ("setting", "same", ["fusion"])):
        choose(browser, name, value)
        assert visible_rows(browser) == expected, name
        choose(browser, name, "")
        assert visible_rows(browser) == ALL_ROWS
    # The metric filter picks columns: the paper's metrics by default, MAE alone when chosen.
    assert shown_headers(browser, SYNTH_FIXED) == ["method", "L ACC2 (Non0)", "LVA ACC2 (Non0)"]
    # Higher is better: best first on the first click, reversed on the second, the missing cell last both times.
    assert row_labels(browser, SYNTH_FIXED) == ["ae", "fusion", "mean"]
    assert sorts_best_first(browser, SYNTH_FIXED, "L ACC2 (Non0)", ["fusion", "ae", "mean"])
    click_header(browser, SYNTH_FIXED, "L ACC2 (Non0)")
    assert row_labels(browser, SYNTH_FIXED) == ["ae", "fusion", "mean"]
    choose(browser, "metric", "mae")
    assert shown_headers(browser, SYNTH_FIXED) == ["method", "L MAE", "LVA MAE"]
    # MAE: lower is better, so the first click puts the smallest first.
    assert sorts_best_first(browser, SYNTH_FIXED, "LVA MAE", ["mean", "ae", "fusion"])
    assert sorts_best_first(browser, SYNTH_FIXED, "method", ["ae", "fusion", "mean"])
    widths = images_loaded(browser)
    assert len(widths) == 1 and all(width > 0 for width in widths)  # the PNG is shown, its PDF twin is not
    assert external_references(browser) == []
    assert console_errors(browser) == []


def break_script(text: str, old: str, new: str):
    assert old in text, f"the page's script no longer holds {old!r}: update this test's breakage"
    return text.replace(old, new)


def test_the_checks_catch_a_script_error(browser, page_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(page_assets, "SCRIPT", break_script(page_assets.SCRIPT, "function applyFilters() {",
                                                            "function applyFilters() {{"))
    open_page(browser, build(page_inputs, tmp_path))
    assert any("SyntaxError" in message for message in console_errors(browser))
    choose(browser, "dataset", "mosi-bclstm")
    assert visible_rows(browser) == ALL_ROWS  # the filter check sees the filter do nothing


def test_the_checks_catch_a_missing_sort_handler(browser, page_inputs, tmp_path, monkeypatch):
    handler = 'button.addEventListener("click", () => sortBy(button.closest("th")));'
    monkeypatch.setattr(page_assets, "SCRIPT", break_script(page_assets.SCRIPT, handler, ""))
    open_page(browser, build(page_inputs, tmp_path))
    assert console_errors(browser) == []  # nothing fails loudly: only the sort check sees it
    assert row_labels(browser, SYNTH_FIXED) != ["fusion", "ae", "mean"]  # a click must be needed to get there
    assert not sorts_best_first(browser, SYNTH_FIXED, "L ACC2 (Non0)", ["fusion", "ae", "mean"])


def test_the_checks_catch_an_external_resource(browser, page_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(page_assets, "STYLE", '@import url("https://fonts.example.invalid/page.css");\n'
                        + page_assets.STYLE)
    open_page(browser, build(page_inputs, tmp_path))
    assert any("example.invalid" in reference for reference in external_references(browser))
