"""What the browser tests look at on a loaded page; each check returns what it found, so the tests can
assert that a good page passes and that a broken page is caught by the same check."""
from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

#: Every URL-bearing attribute and stylesheet rule that points off the page, and every resource the page fetched.
EXTERNAL_REFERENCES_JS = """
const found = [];
for (const element of document.querySelectorAll("*")) {
  for (const name of ["src", "href", "action", "srcset", "poster", "data", "style"]) {
    const value = element.getAttribute(name);
    if (value && /(https?:)?\\/\\//i.test(value) && !value.startsWith("data:")) found.push(name + "=" + value);
  }
}
for (const sheet of document.styleSheets) {
  for (const rule of sheet.cssRules) if (/url\\(\\s*["']?(https?:)?\\/\\//i.test(rule.cssText)) found.push(rule.cssText);
}
for (const entry of performance.getEntriesByType("resource")) {
  if (!entry.name.startsWith("data:")) found.push("fetched " + entry.name);
}
return found;
"""


def open_page(driver, path: Path) -> None:
    driver.get_log("browser")  # the log is read-once: drain what an earlier page left, so it reads this load only
    driver.get(path.resolve().as_uri())


def console_errors(driver) -> list[str]:
    """The SEVERE entries of the browser console (script errors, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visible_rows(driver) -> list[str]:
    """The row labels shown now, table by table, in page order."""
    return [row.find_element(By.CSS_SELECTOR, "th").text
            for row in driver.find_elements(By.CSS_SELECTOR, "section.board tbody tr") if row.is_displayed()]


def choose(driver, filter_name: str, value: str) -> None:
    Select(driver.find_element(By.CSS_SELECTOR, f'select[data-filter="{filter_name}"]')).select_by_value(value)


def click_header(driver, table_id: str, header_text: str) -> None:
    for header in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th"):
        if header.find_element(By.CSS_SELECTOR, "button.sort").text == header_text:
            header.find_element(By.CSS_SELECTOR, "button.sort").click()
            return
    raise AssertionError(f"no header {header_text!r} in #{table_id}")


def row_labels(driver, table_id: str) -> list[str]:
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr th")]


def sorts_best_first(driver, table_id: str, header_text: str, expected: list[str]) -> bool:
    """Click a header once; True when the rows then read ``expected`` (best first, "—" last)."""
    click_header(driver, table_id, header_text)
    return row_labels(driver, table_id) == expected


def images_loaded(driver) -> list[int]:
    """The natural width of every image (0 = not loaded)."""
    return driver.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0);")


def external_references(driver) -> list[str]:
    return driver.execute_script(EXTERNAL_REFERENCES_JS)


def shown_figures(driver) -> list[str]:
    return [f.text for f in driver.find_elements(By.CSS_SELECTOR, "figure") if f.is_displayed()]
