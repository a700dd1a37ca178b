"""A second target system the project has never automated: a parking-permit office, built differently.

No ids on form fields (labels wrap their inputs), search results rendered by JavaScript from a JSON
call, a renewal form sent with ``fetch`` (no page load: the outcome appears in a ``role=status`` box),
a radio group, a ``confirm()`` dialog, and its own error box. A suspension form takes its date only as
dd/mm/yyyy and refuses anything else with its own message. It keeps every renewal and suspension so tests
can compare what bots did with what the office recorded.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · Permit Office</title></head>
<body><header><p>City Parking · Permit Office</p></header><main>{body}</main></body></html>"""
REGISTRATION = re.compile(r"^[A-Z]{2}[0-9]{2} ?[A-Z]{3}$")
DAY_MONTH_YEAR = re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$")


def create_app(password: str = "permits-pw") -> Starlette:
    sessions: set[str] = set()
    renewals: list[dict[str, str]] = []
    suspensions: list[dict[str, str]] = []
    counter = itertools.count(101)
    lock = threading.Lock()

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(PAGE.format(title=title, body=body), status_code=status)

    def signed_in(request: Request) -> bool:
        return request.cookies.get("permit-session") in sessions

    async def logon(request: Request) -> Response:
        problem = ""
        if request.method == "POST":
            form = await request.form()
            if form.get("email") == "officer@city.example" and form.get("secret") == password:
                token = secrets.token_hex(16)
                sessions.add(token)
                response = RedirectResponse("/dashboard", status_code=303)
                response.set_cookie("permit-session", token, httponly=True)
                return response
            problem = '<div role="alert" class="problem">Those details are not right</div>'
        return page("Log on", f"""<h1>Log on</h1>{problem}<form method="post">
<p><label>Email address <input name="email" type="email"></label></p>
<p><label>Passphrase <input name="secret" type="password"></label></p>
<p><input type="submit" value="Log on"></p></form>""")

    async def dashboard(request: Request) -> Response:
        if not signed_in(request):
            return RedirectResponse("/", status_code=303)
        return page("Dashboard", """<h1>Permits</h1>
<div><input aria-label="Search" placeholder="Permit number"> <button type="button" onclick="find()">Find</button></div>
<ul id="hits"></ul>
<script>
async function find() {
  const q = document.querySelector('[placeholder="Permit number"]').value;
  const hits = await (await fetch('/api/search?q=' + encodeURIComponent(q))).json();
  document.getElementById('hits').innerHTML = hits.map(
    p => `<li><a href="/permits/${p}/renew">Renew permit ${p}</a></li>`).join('') || '<li>Nothing found</li>';
}
</script>""")

    async def search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip().upper()
        return JSONResponse([q] if re.fullmatch(r"P-[0-9]{4}", q) else [])

    async def renew_form(request: Request) -> Response:
        if not signed_in(request):
            return RedirectResponse("/", status_code=303)
        permit = html.escape(request.path_params["permit"])
        return page(f"Renew {permit}", f"""<h1>Renew permit {permit}</h1>
<div role="alert" class="problem" hidden></div>
<form onsubmit="return send(event)">
<fieldset><legend>Vehicle type</legend>
<label><input type="radio" name="vehicle" value="car"> Car</label>
<label><input type="radio" name="vehicle" value="van"> Van</label></fieldset>
<p><label>Registration number <input name="registration"></label></p>
<p><label>Duration <select name="months"><option value="">Choose</option>
<option value="6">6 months</option><option value="12">12 months</option></select></label></p>
<p><label>Applicant's reference <input name="their_ref"></label></p>
<p><label><input type="checkbox" name="confirm"> I confirm the details are correct</label></p>
<button>Submit renewal</button></form>
<div role="status"></div>
<script>
async function send(event) {{
  event.preventDefault();
  if (!confirm('Submit the renewal of {permit}?')) return false;
  const answer = await (await fetch('/api/permits/{permit}/renewals', {{method: 'POST', body: new FormData(event.target)}})).json();
  const box = document.querySelector('[role=alert]');
  if (answer.problem) {{ box.textContent = answer.problem; box.hidden = false; return false; }}
  document.querySelector('form').remove();
  document.querySelector('[role=status]').innerHTML = 'Renewal complete. Reference <strong>' + answer.reference + '</strong>';
  return false;
}}
</script>""")

    async def renew(request: Request) -> Response:
        if not signed_in(request):
            return JSONResponse({"problem": "Log on again"}, status_code=401)
        form = await request.form()
        values = {k: str(form.get(k, "")) for k in ("vehicle", "registration", "months", "their_ref", "confirm")}
        if values["vehicle"] not in ("car", "van"):
            return JSONResponse({"problem": "Choose the vehicle type"})
        if not REGISTRATION.match(values["registration"].upper()):
            return JSONResponse({"problem": "The registration number is not valid"})
        if values["months"] not in ("6", "12") or values["confirm"] != "on":
            return JSONResponse({"problem": "Choose a duration and confirm the details"})
        with lock:
            reference = f"RN-{next(counter):06d}"
            renewals.append({"reference": reference, "permit": request.path_params["permit"], **values})
        return JSONResponse({"reference": reference})

    async def history(request: Request) -> Response:
        if not signed_in(request):
            return RedirectResponse("/", status_code=303)
        permit = request.path_params["permit"]
        rows = "".join(f'<tr><td>{html.escape(r["their_ref"])}</td><td class="ref">{r["reference"]}</td></tr>'
                       for r in renewals if r["permit"] == permit)
        return page("History", f'<h1>History</h1><table aria-label="Renewals"><tr><th>Their reference</th>'
                               f'<th>Reference</th></tr>{rows}</table>')

    async def suspend(request: Request) -> Response:
        if not signed_in(request):
            return RedirectResponse("/", status_code=303)
        permit = html.escape(request.path_params["permit"])
        problem = ""
        if request.method == "POST":
            start = _day_month_year(str((await request.form()).get("start", "")).strip())
            if start is not None:
                with lock:
                    reference = f"SU-{next(counter):06d}"
                    suspensions.append({"reference": reference, "permit": request.path_params["permit"],
                                        "start": start.isoformat()})
                return page("Suspended", f"""<h1>Suspension recorded</h1><p role="status">Permit {permit} is
suspended from {start.day} {start:%B} {start.year}. Reference <strong>{reference}</strong></p>""")
            problem = '<div role="alert" class="problem">Enter the start date as dd/mm/yyyy, for example 31/12/2026</div>'
        return page(f"Suspend {permit}", f"""<h1>Suspend permit {permit}</h1>{problem}<form method="post">
<p><label>Suspend from <input name="start"></label> <span>dd/mm/yyyy</span></p>
<button>Suspend permit</button></form>""")

    async def suspension_export(request: Request) -> Response:
        with lock:
            return JSONResponse(list(suspensions))

    async def export(request: Request) -> Response:
        with lock:
            return JSONResponse(list(renewals))

    return Starlette(routes=[
        Route("/", logon, methods=["GET", "POST"]),
        Route("/dashboard", dashboard),
        Route("/api/search", search),
        Route("/permits/{permit}/renew", renew_form),
        Route("/api/permits/{permit}/renewals", renew, methods=["POST"]),
        Route("/permits/{permit}/history", history),
        Route("/api/renewals", export),
        Route("/permits/{permit}/suspend", suspend, methods=["GET", "POST"]),
        Route("/api/suspensions", suspension_export),
    ])


def _day_month_year(text: str) -> dt.date | None:
    """The date in ``dd/mm/yyyy`` text, or ``None`` for any other text (the office reads no other way)."""
    match = DAY_MONTH_YEAR.match(text)
    if not match:
        return None
    day, month, year = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


@contextmanager
def permit_office() -> Iterator[str]:
    """Serve the permit office on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)  # uvicorn reports readiness only by this flag
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
