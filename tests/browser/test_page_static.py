"""The page's file without a browser (default tier): self-contained, escaped, every header linked to a
definition, synthetic data flagged, provenance given, and written by ``mmbench leaderboard --out``."""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

from mmbench.cli import main
from mmbench.reports.aggregate import aggregate, counted_runs
from mmbench.reports.page import store_provenance, write_page
from tests.browser.conftest import _save


class Anchors(HTMLParser):
    """Every id, every in-page link, and the in-page links inside each metric header."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.metric_headers, self._header = set(), [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "th" and "data-metric" in attrs:
            self._header = [attrs["data-metric"], None]
            self.metric_headers.append(self._header)
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
            if self._header is not None:
                self._header[1] = attrs["href"][1:]

    def handle_endtag(self, tag):
        if tag == "th":
            self._header = None


def test_page_is_one_file_with_the_figure_inlined(page_inputs, tmp_path):
    rows, figures, provenance = page_inputs
    text = write_page(rows, tmp_path / "page", figures, provenance).read_text()
    assert not re.search(r"https?:|<link|<script\s+src|@import|\burl\(", text, re.I)
    inlined = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert [base64.b64decode(data) for data in inlined] == [figures[0].read_bytes()]  # the PDF twin is skipped
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == ["index.html"]


def test_every_metric_header_links_to_a_definition_on_the_page(page_inputs, tmp_path):
    rows, figures, provenance = page_inputs
    anchors = Anchors()
    anchors.feed(write_page(rows, tmp_path / "page", figures, provenance).read_text())
    assert {metric for metric, _ in anchors.metric_headers} == {"acc2_non0", "mae"}
    assert all(link == f"def-{metric}" for metric, link in anchors.metric_headers)
    assert set(anchors.links) <= anchors.ids and "def-method" in anchors.links


def test_synthetic_tables_are_flagged_and_provenance_is_in_the_footer(page_inputs, tmp_path):
    rows, figures, provenance = page_inputs
    text = write_page(rows, tmp_path / "page", figures, provenance).read_text()
    titles = dict(re.findall(r'data-dataset="([^"]+)"[^>]*>\s*<h2>([^<]+)</h2>', text))
    assert "SYNTHETIC" in titles["mosi-synth"] and "SYNTHETIC" not in titles["mosi-bclstm"]
    footer = text[text.index('<footer id="provenance">'):]
    assert "every row of mosi-synth" in footer and "mosi-bclstm" not in footer.split("synthetic rows")[1]
    assert f"mosi-bclstm: <code>{'b' * 64}</code>" in footer and f"mosi-synth: <code>{'s' * 64}</code>" in footer


def test_every_text_is_escaped(board_store, tmp_path):
    _save(board_store, "x1", "<img src=x onerror=alert(1)>", 1111, {("L", "acc2_non0"): 0.6})
    rows = aggregate(board_store)
    provenance = store_provenance(counted_runs(board_store.runs()), rows) | {"note": "<script>alert(2)</script>"}
    text = write_page(rows, tmp_path / "page", [], provenance).read_text()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<script>alert(2)" not in text and "&lt;script&gt;alert(2)&lt;/script&gt;" in text


def test_leaderboard_command_writes_the_page_with_its_figures(board_store, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["leaderboard", "--results", str(tmp_path / "store"), "--format", "html", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    pngs = sorted((out / "figures").glob("*.png"))
    assert pngs and (out / "index.html").read_text().count("data:image/png;base64,") == len(pngs)
    assert main(["leaderboard", "--results", str(tmp_path / "store"), "--format", "md", "--out", str(out)]) == 1
    assert "add --format html" in capsys.readouterr().err
