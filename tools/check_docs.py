"""Open the built documentation in headless Chromium and check every page.

Usage::

    python tools/check_docs.py [docs/_build/html] [--chromium PATH] [--page NAME ...]

``make docs-check`` builds the pages, then runs this. Each ``.html`` page of
the build (but ``search.html`` and ``genindex.html``) is loaded from disk
(``file://``, as a reader without internet opens it) and fails when:

- a formula is left unrendered: raw TeX (``\\(``, ``\\[``, ``\\begin{``)
  remains in the page's text outside code, MathJax rendered fewer formulas
  (``mjx-container`` elements) than the page's source has, or MathJax
  reported a TeX error (``mjx-merror``);
- the page throws or logs a JavaScript error (uncaught exceptions,
  ``console.error``, resources that fail to load);
- the page requests anything outside the built site (``http(s)``: a CDN).

The pages are the documents of the build's search index (so pages an older
build left behind are skipped), or every ``.html`` file where it has none.
It prints one line per page and a summary, and exits 1 when a page fails
(2 when Chromium cannot be started).

Chromium is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``), so this needs nothing but the standard
library. :func:`check_page` holds the verdict and needs no browser
(``tests/test_docs_check.py``).
"""

import argparse
import fcntl
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

#: Pages that are not documentation (search runs on the search index).
SKIPPED_PAGES = {"search.html", "genindex.html"}
#: Folders of the build that hold assets, not pages.
SKIPPED_DIRS = {"_static", "_sources", "_images", "_downloads"}

#: Flags for a headless Chromium on a machine whose network is closed: no
#: background connections (they would fail, and be logged, anyway).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Raw TeX that MathJax should have replaced.
RAW_TEX = re.compile(r"\\\(|\\\[|\\begin\{")
#: Elements whose text is code or not shown: raw TeX there is not a formula.
#: (MathJax skips these too.)
CODE_TAGS = {"script", "style", "pre", "code", "textarea", "noscript", "kbd", "samp", "tt"}
#: URL schemes that stay inside the built site.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")

#: Run in the page after its load event: wait for MathJax's first typesetting
#: and for the fonts, then hand back the rendered DOM.
RENDER_SCRIPT = """
(async () => {
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const startup = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (startup) {
    try {
      const done = await Promise.race([startup.then(() => true),
                                       wait(%(timeout_ms)d).then(() => false)]);
      if (!done) console.error("MathJax did not finish typesetting within %(timeout_ms)d ms");
    } catch (error) {
      console.error("MathJax failed: " + error);
    }
  }
  if (document.fonts) await Promise.race([document.fonts.ready, wait(%(timeout_ms)d)]);
  return document.documentElement.outerHTML;
})()
"""


# -- The verdict (no browser) --------------------------------------------------


class _MathSource(HTMLParser):
    """Counts the formulas of a page's HTML as Sphinx wrote it (``class="math"``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.count = 0

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("span", "div") and "math" in classes:
            self.count += 1


class _RenderedDom(HTMLParser):
    """Rendered formulas, MathJax errors and raw TeX left in a page's DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rendered = 0
        self.errors = 0
        self.raw = []
        self._code_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "mjx-container":
            self.rendered += 1
        elif tag == "mjx-merror":
            self.errors += 1
        elif tag in CODE_TAGS:
            self._code_depth += 1

    def handle_endtag(self, tag):
        if tag in CODE_TAGS and self._code_depth:
            self._code_depth -= 1

    def handle_data(self, data):
        if not self._code_depth and RAW_TEX.search(data):
            self.raw.append(" ".join(data.split()))


def count_formulas(source_html):
    """Number of formulas (Sphinx's ``math`` elements) in a page's source."""
    parser = _MathSource()
    parser.feed(source_html)
    parser.close()
    return parser.count


def is_external(url):
    """Whether a request leaves the built site."""
    return not url.startswith(LOCAL_SCHEMES)


@dataclass
class PageResult:
    """What :func:`check_page` found on one page."""

    name: str
    formulas: int = 0
    rendered: int = 0
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def line(self):
        """One line for the report."""
        if self.ok:
            detail = f"{self.rendered} formulas rendered" if self.formulas else "no formulas"
            return f"ok    {self.name}  ({detail})"
        return f"FAIL  {self.name}: " + "; ".join(self.problems)


def _short(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_page(name, source_html, rendered_dom, errors=(), requests=()):
    """The verdict on one page.

    Parameters
    ----------
    name : str
        The page, for the report (e.g. ``"user_guide/quotas.html"``).
    source_html : str
        The page's file as Sphinx wrote it.
    rendered_dom : str or None
        ``document.documentElement.outerHTML`` after MathJax finished, or
        None when the page could not be read back.
    errors : iterable of str
        JavaScript errors the page threw or logged.
    requests : iterable of str
        URLs the page requested.

    Returns
    -------
    PageResult
    """
    result = PageResult(name, formulas=count_formulas(source_html))
    if rendered_dom is None:
        result.problems.append("the page could not be read back from the browser")
    else:
        dom = _RenderedDom()
        dom.feed(rendered_dom)
        dom.close()
        result.rendered = dom.rendered
        if dom.raw:
            result.problems.append(
                f'{len(dom.raw)} unrendered formula(s), e.g. "{_short(dom.raw[0], 80)}"'
            )
        if dom.rendered < result.formulas:
            result.problems.append(
                f"MathJax rendered {dom.rendered} of {result.formulas} formulas"
            )
        if dom.errors:
            result.problems.append(f"{dom.errors} formula(s) with a TeX error (mjx-merror)")
    errors = list(dict.fromkeys(errors))
    if errors:
        result.problems.append(f"{len(errors)} JavaScript error(s): {_short(errors[0])}")
    external = list(dict.fromkeys(url for url in requests if is_external(url)))
    if external:
        result.problems.append(
            f"{len(external)} request(s) outside the built site, e.g. {_short(external[0], 100)}"
        )
    return result


def _docnames(html_dir):
    """The documents of the last build (its search index), or None."""
    index = Path(html_dir) / "searchindex.js"
    if not index.is_file():
        return None
    match = re.search(r'"docnames":(\[[^\]]*\])', index.read_text(encoding="utf-8"))
    return None if match is None else json.loads(match.group(1))


def find_pages(html_dir):
    """The pages of a build to check, sorted: every .html but search and index.

    Where the build has a search index, its documents: pages that an earlier
    build left behind (of documents removed since) are not checked.
    """
    html_dir = Path(html_dir)
    docnames = _docnames(html_dir)
    if docnames is None:
        candidates = [path.relative_to(html_dir) for path in html_dir.rglob("*.html")]
    else:
        candidates = [Path(f"{name}.html") for name in docnames]
        candidates = [page for page in candidates if (html_dir / page).is_file()]
    return sorted(
        page for page in candidates
        if page.parts[0] not in SKIPPED_DIRS and page.as_posix() not in SKIPPED_PAGES
    )


def summary(results):
    """The closing line of the report."""
    failed = [result for result in results if not result.ok]
    with_math = [result for result in results if result.formulas]
    formulas = sum(result.rendered for result in with_math)
    return (
        f"docs-check: {len(results)} pages, {len(with_math)} with formulas "
        f"({formulas} rendered), {len(failed)} failed"
    )


# -- Chromium over the DevTools protocol ---------------------------------------


class BrowserError(RuntimeError):
    """Chromium could not be started or stopped answering."""


def find_chromium(explicit=None):
    """Path of a Chromium executable: ``explicit``, ``$CHROMIUM``, or on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM")):
        if candidate:
            return shutil.which(candidate) or candidate
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd):
    """``fd`` moved above 9, out of the way of descriptors 3 and 4 (close on exec)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Chromium:
    """A headless Chromium and one page, driven over ``--remote-debugging-pipe``.

    The protocol's messages are JSON, each ended by a NUL byte; Chromium reads
    them from its file descriptor 3 and writes to its descriptor 4.
    """

    def __init__(self, executable, timeout=60.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="docs-check-chromium-")
        self._log = tempfile.TemporaryFile()
        to_child, self._out = (_high_fd(fd) for fd in os.pipe())
        self._in, from_child = (_high_fd(fd) for fd in os.pipe())
        command = [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        # posix_spawn puts the pipe ends on the descriptors Chromium expects
        # (no Python code runs between fork and exec, so this is safe in a
        # process with threads, e.g. a pytest-xdist worker). Every other
        # descriptor of this process closes on exec.
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._pid = os.posix_spawnp(command[0], command, dict(os.environ), file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, self._log.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, self._log.fileno(), 2),
                (os.POSIX_SPAWN_DUP2, to_child, 3),
                (os.POSIX_SPAWN_DUP2, from_child, 4),
            ])
        except OSError:
            for fd in (self._in, self._out):
                os.close(fd)
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        finally:
            for fd in (devnull, to_child, from_child):
                os.close(fd)
        self._returncode = None
        self._buffer = b""
        self._next_id = 0
        self._events = []
        self.session = None
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=self.session)
        except BaseException:
            self.close()
            raise

    # Messages

    def _send(self, method, params=None, session=None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._out, data):]
        except OSError as error:
            raise BrowserError(f"Chromium stopped reading: {error}{self._log_tail()}") from None
        return self._next_id

    def _receive(self, deadline):
        """The next message, or None at the deadline."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited{self._log_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=None):
        """Send a command and return its result; events that come first are kept."""
        id_ = self._send(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline)
            if message is None:
                raise BrowserError(f"no answer to {method} within {timeout or self.timeout:.0f} s")
            if message.get("id") == id_:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method, timeout=None):
        """Wait for an event of the page; events before it are kept."""
        deadline = time.monotonic() + (timeout or self.timeout)
        for index, event in enumerate(self._events):
            if event["method"] == method and event.get("sessionId") == self.session:
                del self._events[index]
                return event
        while True:
            message = self._receive(deadline)
            if message is None:
                raise BrowserError(f"no {method} within {timeout or self.timeout:.0f} s")
            if message.get("method") == method and message.get("sessionId") == self.session:
                return message
            if "method" in message:
                self._events.append(message)

    def _log_tail(self):
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()[-15:]
        return (":\n" + "\n".join(tail)) if tail else ""

    # Pages

    def render(self, url):
        """Load ``url``; return its rendered DOM, JavaScript errors and requests."""
        self._events.clear()
        navigation = self.call("Page.navigate", {"url": url}, session=self.session)
        if navigation.get("errorText"):
            return None, [f"navigation failed: {navigation['errorText']}"], []
        self.wait_for("Page.loadEventFired")
        timeout_ms = int(self.timeout * 1000 * 0.75)
        answer = self.call(
            "Runtime.evaluate",
            {
                "expression": RENDER_SCRIPT % {"timeout_ms": timeout_ms},
                "awaitPromise": True,
                "returnByValue": True,
            },
            session=self.session,
        )
        dom = answer.get("result", {}).get("value")
        errors, requests = _page_events(
            event for event in self._events if event.get("sessionId") == self.session
        )
        if "exceptionDetails" in answer:
            errors.append("reading the page failed: " + _exception_text(answer["exceptionDetails"]))
        return dom, errors, requests

    def _poll(self, timeout=0.0):
        """Chromium's exit status, waiting up to ``timeout`` s; None while it runs."""
        deadline = time.monotonic() + timeout
        while self._returncode is None:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.05)
        return self._returncode

    def close(self):
        try:
            if self._poll() is None:
                try:
                    self._send("Browser.close")
                except BrowserError:
                    pass
                if self._poll(timeout=10) is None:
                    os.kill(self._pid, signal.SIGKILL)
                    os.waitpid(self._pid, 0)
                    self._returncode = -signal.SIGKILL
        finally:
            for fd in (self._in, self._out):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _exception_text(details):
    exception = details.get("exception") or {}
    text = exception.get("description") or details.get("text") or "exception"
    where = details.get("url")
    if where:
        text += f" ({where}:{details.get('lineNumber', 0) + 1})"
    return text


def _remote_object_text(arg):
    if "value" in arg:
        return str(arg["value"])
    return arg.get("description") or arg.get("type", "")


def _page_events(events):
    """JavaScript errors and requested URLs among a page's protocol events."""
    errors, requests = [], []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append("uncaught " + _exception_text(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(
                "console.error: " + " ".join(_remote_object_text(a) for a in params.get("args", []))
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            url = f" ({entry['url']})" if entry.get("url") else ""
            errors.append(entry.get("text", "") + url)
        elif method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
    return errors, requests


# -- Command line ----------------------------------------------------------------


def check_site(html_dir, chromium, pages=None, timeout=60.0, out=sys.stdout):
    """Check the pages of a build; return their :class:`PageResult`."""
    html_dir = Path(html_dir).resolve()
    pages = [Path(page) for page in pages] if pages else find_pages(html_dir)
    results = []
    with Chromium(chromium, timeout=timeout) as browser:
        for page in pages:
            path = html_dir / page
            try:
                dom, errors, requests = browser.render(path.as_uri())
            except BrowserError as error:
                dom, errors, requests = None, [str(error)], []
            result = check_page(
                page.as_posix(), path.read_text(encoding="utf-8"), dom, errors, requests
            )
            print(result.line(), file=out, flush=True)
            results.append(result)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default="docs/_build/html",
                        help="the HTML build to check (default: %(default)s)")
    parser.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM, or "
                        "chromium on PATH)")
    parser.add_argument("--page", action="append", dest="pages", metavar="NAME",
                        help="check only this page (relative to html_dir); repeatable")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one page may take (default: %(default)s)")
    args = parser.parse_args(argv)

    html_dir = Path(args.html_dir)
    if not (html_dir / "index.html").is_file():
        print(f"docs-check: no built documentation in {html_dir} (run make docs)", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("docs-check: Chromium not found; install it (Debian: apt-get install chromium) "
              "or give --chromium PATH", file=sys.stderr)
        return 2
    try:
        results = check_site(html_dir, chromium, args.pages, args.timeout)
    except (BrowserError, OSError) as error:
        print(f"docs-check: could not run Chromium ({chromium}): {error}", file=sys.stderr)
        return 2
    print(summary(results))
    return 0 if results and all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
