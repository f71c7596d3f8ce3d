"""The page checker of ``make docs-check`` (tools/check_docs.py).

Its verdict is tested on hand-written DOMs and event logs, without a browser,
so that it keeps working on machines without Chromium (CI). One test drives
a real headless Chromium where one is installed.
"""

import importlib.util
import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_docs", ROOT / "tools" / "check_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_docs = _load_checker()

SOURCE = """<html><body>
<p>The quota of class <span class="math notranslate nohighlight">\\(k\\)</span> is</p>
<div class="math notranslate nohighlight">\\[n_k = w_k N\\]</div>
<pre>echo "\\(not math\\)"</pre>
</body></html>"""

RENDERED = """<html><head><script>var s = "\\\\(";</script></head><body>
<p>The quota of class <span class="math notranslate nohighlight"><mjx-container class="MathJax"
jax="CHTML"><mjx-math><mjx-mi>k</mjx-mi></mjx-math><mjx-assistive-mml><math><mi>k</mi></math>
</mjx-assistive-mml></mjx-container></span> is</p>
<div class="math notranslate nohighlight"><mjx-container class="MathJax" jax="CHTML"
display="true"><mjx-math><mjx-mi>n</mjx-mi></mjx-math></mjx-container></div>
<pre>echo "\\(not math\\)"</pre><p>Inline <code>re.compile(r"\\(")</code> is code.</p>
</body></html>"""

UNRENDERED = SOURCE  # what a reader without MathJax sees: the source, untouched


def test_a_rendered_page_passes():
    result = check_docs.check_page("guide.html", SOURCE, RENDERED)
    assert result.ok, result.problems
    assert (result.formulas, result.rendered) == (2, 2)
    assert result.line().startswith("ok    guide.html")


def test_raw_tex_fails():
    result = check_docs.check_page("guide.html", SOURCE, UNRENDERED)
    assert not result.ok
    assert any("unrendered" in problem and "\\(k\\)" in problem for problem in result.problems)
    assert any("rendered 0 of 2" in problem for problem in result.problems)
    assert result.line().startswith("FAIL  guide.html: ")


def test_raw_tex_outside_math_elements_fails():
    # A formula MathJax never found (e.g. not wrapped by Sphinx) still fails.
    dom = RENDERED.replace("is</p>", "is \\(w_k\\)</p>")
    result = check_docs.check_page("guide.html", SOURCE, dom)
    assert [problem for problem in result.problems if "unrendered" in problem]


def test_display_math_environment_left_raw_fails():
    dom = RENDERED.replace("</body>", "<div>\\begin{aligned}x\\end{aligned}</div></body>")
    assert not check_docs.check_page("guide.html", SOURCE, dom).ok


def test_fewer_rendered_formulas_than_the_source_fails():
    dom = RENDERED.replace("<mjx-container class=\"MathJax\" jax=\"CHTML\"\ndisplay", "<x\ndisplay")
    result = check_docs.check_page("guide.html", SOURCE, dom)
    assert any("rendered 1 of 2" in problem for problem in result.problems)


def test_tex_error_fails():
    dom = RENDERED.replace("<mjx-mi>k</mjx-mi>",
                           "<mjx-merror>Undefined control sequence</mjx-merror>")
    result = check_docs.check_page("guide.html", SOURCE, dom)
    assert any("TeX error" in problem for problem in result.problems)


def test_javascript_error_fails():
    result = check_docs.check_page(
        "guide.html", SOURCE, RENDERED,
        errors=["uncaught ReferenceError: boom is not defined (file:///x/guide.html:3)"],
    )
    assert not result.ok
    assert any("JavaScript error" in p and "ReferenceError" in p for p in result.problems)


def test_external_request_fails():
    result = check_docs.check_page(
        "guide.html", SOURCE, RENDERED,
        requests=["file:///x/guide.html", "data:font/woff;base64,AA",
                  "https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"],
    )
    assert any("outside the built site" in p and "cdn.jsdelivr" in p for p in result.problems)
    local = check_docs.check_page("guide.html", SOURCE, RENDERED,
                                  requests=["file:///x/_static/mathjax/tex-chtml.js"])
    assert local.ok


def test_a_page_without_math_passes_without_mathjax():
    page = "<html><body><p>No formulas; <code>\\(</code> in code.</p></body></html>"
    result = check_docs.check_page("api.html", page, page)
    assert result.ok and result.formulas == 0
    assert "no formulas" in result.line()


def test_a_page_not_read_back_fails():
    assert not check_docs.check_page("guide.html", SOURCE, None).ok


def test_protocol_events_become_errors_and_requests():
    events = [
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "text": "Uncaught", "url": "file:///x/a.html", "lineNumber": 2,
            "exception": {"description": "ReferenceError: boom is not defined"}}}},
        {"method": "Runtime.consoleAPICalled", "params": {
            "type": "error", "args": [{"type": "string", "value": "MathJax failed"}]}},
        {"method": "Runtime.consoleAPICalled", "params": {
            "type": "log", "args": [{"type": "string", "value": "fine"}]}},
        {"method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "text": "Failed to load resource: net::ERR_FILE_NOT_FOUND",
            "url": "file:///x/_static/missing.js"}}},
        {"method": "Log.entryAdded", "params": {"entry": {"level": "warning", "text": "meh"}}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": "https://cdn/x.js"}}},
    ]
    errors, requests = check_docs._page_events(events)
    assert errors == [
        "uncaught ReferenceError: boom is not defined (file:///x/a.html:3)",
        "console.error: MathJax failed",
        "Failed to load resource: net::ERR_FILE_NOT_FOUND (file:///x/_static/missing.js)",
    ]
    assert requests == ["https://cdn/x.js"]


def test_find_pages_skips_search_index_and_assets(tmp_path):
    for name in ["index.html", "search.html", "genindex.html", "api.html",
                 "user_guide/quotas.html", "generated/skprune.MetriQ.html",
                 "_static/mathjax/x.html", "_sources/index.rst.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("<html></html>")
    pages = [page.as_posix() for page in check_docs.find_pages(tmp_path)]
    assert pages == ["api.html", "generated/skprune.MetriQ.html", "index.html",
                     "user_guide/quotas.html"]


def test_find_pages_takes_the_documents_of_the_search_index(tmp_path):
    for name in ["index.html", "api.html", "old_page.html", "search.html", "genindex.html"]:
        (tmp_path / name).write_text("<html></html>")
    (tmp_path / "searchindex.js").write_text(
        'Search.setIndex({"alltitles":{"A [b]":[[0,"a"]]},'
        '"docnames":["api","index","search_doc_not_built"],"envversion":{}})'
    )
    # old_page.html: left behind by an earlier build, not a document any more.
    assert [page.as_posix() for page in check_docs.find_pages(tmp_path)] == [
        "api.html", "index.html"]


def test_summary_counts_failures():
    results = [check_docs.check_page("a.html", SOURCE, RENDERED),
               check_docs.check_page("b.html", SOURCE, UNRENDERED),
               check_docs.check_page("c.html", "<p></p>", "<p></p>")]
    assert check_docs.summary(results) == (
        "docs-check: 3 pages, 2 with formulas (2 rendered), 1 failed"
    )


def test_main_without_a_build_says_so(tmp_path, capsys):
    assert check_docs.main([str(tmp_path)]) == 2
    assert "make docs" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(check_docs.find_chromium() is None, reason="needs Chromium")
def test_chromium_catches_broken_pages(tmp_path):
    """In a real browser: a JavaScript error, unrendered TeX and a CDN request fail."""
    pages = {
        "good.html": "<html><body><p>Plain text.</p></body></html>",
        "throws.html": "<html><body><p>Text.</p><script>notDefined();</script></body></html>",
        "console.html": "<html><body><script>console.error('bad')</script></body></html>",
        "raw.html": '<html><body><span class="math">\\(w_k\\)</span></body></html>',
        "cdn.html": '<html><body><script src="https://cdn.invalid/mathjax.js"></script></body></html>',
        "missing.html": '<html><body><script src="_static/missing.js"></script></body></html>',
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    out = io.StringIO()
    results = check_docs.check_site(tmp_path, check_docs.find_chromium(), sorted(pages),
                                    timeout=60, out=out)
    verdicts = {result.name: result for result in results}
    report = json.dumps({name: r.problems for name, r in verdicts.items()}, indent=1)
    assert verdicts["good.html"].ok, report
    assert any("ReferenceError" in p for p in verdicts["throws.html"].problems), report
    assert any("console.error: bad" in p for p in verdicts["console.html"].problems), report
    assert any("unrendered" in p for p in verdicts["raw.html"].problems), report
    assert any("outside the built site" in p for p in verdicts["cdn.html"].problems), report
    assert any("JavaScript error" in p for p in verdicts["missing.html"].problems), report
    assert len(out.getvalue().splitlines()) == len(pages)
