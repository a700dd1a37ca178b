"""A small admin site with three type-and-pick claimant fields, for the ``choose`` tests.

- ``/aria``: an ARIA combobox (``role=combobox`` input, ``aria-controls``) whose ``role=listbox`` popup of
  ``role=option`` items is fetched from the site after typing, 200 ms after the last key, and says "No
  matches" when nothing does; it sits at a fixed place, so a test can read a screenshot by position;
- ``/select2``: the real select2 library (vendored in ``static/``, see its README) with jQuery, over a
  ``<select>`` whose options come from the site's search as the user types;
- ``/datalist``: an ``<input list=…>`` with a ``<datalist>`` of names.

Each form posts to ``/submit``; the site keeps what it received, so a test asserts what the site got.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

STATIC = Path(__file__).parent / "static"
CLAIMANTS = {"C-101": "Jane Smith", "C-102": "Jane Smithers", "C-103": "Janet Doe", "C-104": "John Smith",
             "C-105": "Mary Jones"}

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · Claims admin</title>{head}</head>
<body><h1>{title}</h1><main>{body}</main></body></html>"""

ARIA_HEAD = """<style>
  #claimant-label { position: absolute; left: 10px; top: 110px; }
  #claimant { position: absolute; left: 200px; top: 100px; width: 300px; height: 40px; box-sizing: border-box; margin: 0; }
  #claimants { position: absolute; left: 200px; top: 140px; width: 300px; margin: 0; padding: 0; list-style: none;
               background: #fff; border: 1px solid #888; }
  #save { position: absolute; left: 10px; top: 300px; }
</style>"""
ARIA = """<form method="post" action="/submit?widget=aria">
<p><label id="claimant-label" for="claimant">Claimant</label>
<input id="claimant" role="combobox" aria-autocomplete="list" aria-expanded="false" aria-controls="claimants"
       autocomplete="off">
<ul id="claimants" role="listbox" aria-label="People" hidden></ul>
<input type="hidden" name="claimant_id" id="claimant-id"></p>
<p><button id="save">Save</button></p></form>
<script>
const input = document.getElementById('claimant'), list = document.getElementById('claimants'),
      chosen = document.getElementById('claimant-id');
let timer;
function close() { list.hidden = true; input.setAttribute('aria-expanded', 'false'); }
input.addEventListener('input', () => {
  chosen.value = '';
  clearTimeout(timer);
  timer = setTimeout(async () => {  // the list comes from the site, a moment after the last key
    const q = input.value.trim();
    if (!q) { close(); return; }
    const hits = (await (await fetch('/api/claimants?q=' + encodeURIComponent(q))).json()).results;
    list.replaceChildren(...hits.map(hit => {
      const item = document.createElement('li');
      item.setAttribute('role', 'option');
      item.dataset.id = hit.id;
      item.textContent = hit.text;
      return item;
    }));
    if (!hits.length) list.innerHTML = '<li class="empty">No matches</li>';
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  }, 200);
});
list.addEventListener('click', event => {
  const item = event.target.closest('[role=option]');
  if (!item) return;
  input.value = item.textContent;
  chosen.value = item.dataset.id;
  close();
});
</script>"""

SELECT2_HEAD = '<link rel="stylesheet" href="/static/select2.min.css">'
SELECT2 = """<form method="post" action="/submit?widget=select2">
<p><label for="claimant">Claimant</label>
<select id="claimant" name="claimant_id" style="width: 20em"><option></option></select></p>
<p><button>Save</button></p></form>
<script src="/static/jquery.min.js"></script>
<script src="/static/select2.min.js"></script>
<script>
$('#claimant').select2({
  placeholder: 'Choose a claimant',
  minimumInputLength: 1,
  ajax: {url: '/api/claimants', dataType: 'json', delay: 150, data: params => ({q: params.term || ''})},
});
</script>"""

DATALIST = """<form method="post" action="/submit?widget=datalist">
<p><label for="claimant">Claimant</label> <input id="claimant" name="claimant" list="claimants" autocomplete="off">
<datalist id="claimants">{options}</datalist></p>
<p><button>Save</button></p></form>"""

PAGES = {
    "/aria": ("Claimant (ARIA combobox)", ARIA_HEAD, ARIA),
    "/select2": ("Claimant (select2)", SELECT2_HEAD, SELECT2),
    "/datalist": ("Claimant (datalist)", "", DATALIST.format(
        options="".join(f'<option value="{name}"></option>' for name in CLAIMANTS.values()))),
}
TYPES = {".js": "text/javascript", ".css": "text/css"}
SERVED = {"jquery.min.js", "select2.min.js", "select2.min.css"}


@dataclass
class WidgetSite:
    """The running site: its base URL and the forms it received (the widget's name and the form fields)."""

    url: str
    submitted: list[dict[str, str]] = field(default_factory=list)


def _handler(site: WidgetSite) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path, query = urlsplit(self.path)[2:4]
            if path in PAGES:
                title, head, body = PAGES[path]
                self.answer(200, "text/html; charset=utf-8", PAGE.format(title=title, head=head, body=body).encode())
            elif path == "/api/claimants":
                term = dict(parse_qsl(query)).get("q", "").strip().lower()
                hits = [{"id": key, "text": name} for key, name in CLAIMANTS.items() if term and term in name.lower()]
                self.answer(200, "application/json", json.dumps({"results": hits}).encode())
            elif path.removeprefix("/static/") in SERVED:
                file = STATIC / path.removeprefix("/static/")
                self.answer(200, TYPES[file.suffix], file.read_bytes())
            else:
                self.answer(404, "text/plain", b"not found")

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            widget = dict(parse_qsl(urlsplit(self.path).query)).get("widget", "")
            site.submitted.append({"widget": widget, **form})
            self.answer(200, "text/html; charset=utf-8",
                        PAGE.format(title="Saved", head="", body='<p role="status">Claimant saved</p>').encode())

        def answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def widget_site() -> Iterator[WidgetSite]:
    """Serve the site on a free port of 127.0.0.1 in a thread; yield it, and stop it afterwards."""
    site = WidgetSite(url="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
