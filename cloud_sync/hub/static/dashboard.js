// edge-hub dashboard: plain ES modules, no build step. Views by the URL's hash:
// #/ (overview), #/history?filters, #/event/<id>, #/device/<id>.
// Auth: when the hub has a token, a login form POSTs it (JSON body) to /api/login, which
// sets an HttpOnly session cookie; the page never keeps the token, in a URL or in storage.
import { api, auth, CSRF, setConn, url, warn, Unauthorized } from "./js/core.js";
import * as overview from "./js/overview.js";
import * as history from "./js/history.js";
import * as eventView from "./js/event.js";
import * as deviceView from "./js/device.js";

localStorage.removeItem("edgeHubToken"); // where dashboards before issue 11 kept the token
let started = false;
let source = null;
const VIEWS = ["overview", "history", "event", "device"];

// --- login ---------------------------------------------------------------------------------
function showLogin(message) {
  document.body.classList.add("locked");
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("logout").hidden = true;
  if (source) { source.close(); source = null; }
  history.hide();
  setConn(false, "logged out");
  document.getElementById("login-token").focus();
}
auth.onUnauthorized = () => showLogin(started ? "The session ended; log in again." : "");

async function login(ev) {
  ev.preventDefault();
  const input = document.getElementById("login-token");
  const r = await fetch(url("/api/login"), {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...CSRF },
    body: JSON.stringify({ token: input.value }),
  });
  input.value = "";
  if (!r.ok) {
    let why = "login failed (" + r.status + ")";
    try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
    document.getElementById("login-error").textContent = why;
    return;
  }
  document.getElementById("login").hidden = true;
  document.body.classList.remove("locked");
  start(true);
}

async function logout() {
  await fetch(url("/api/logout"), { method: "POST", credentials: "same-origin", headers: CSRF });
  showLogin("Logged out.");
}

// --- the live feed of the overview ------------------------------------------------------------
async function startFeed() {
  await overview.loadFeed();
  // same origin: the session cookie goes with it (EventSource cannot set headers)
  const es = new EventSource(url("/api/stream"));
  source = es;
  es.addEventListener("event", m => overview.addEvent(JSON.parse(m.data), true));
  es.onopen = () => setConn(true, "live");
  es.onerror = () => {
    setConn(false, "reconnecting…");
    // closed for good (e.g. 401 after the session expired): find out why
    if (es.readyState === EventSource.CLOSED) api("/api/session").catch(() => {});
  };
}

// --- views ----------------------------------------------------------------------------------
function route() {
  if (document.body.classList.contains("locked")) return;
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?");
  const [view, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  const name = VIEWS.includes(view) && view !== "overview" ? view : "overview";
  for (const v of VIEWS) document.getElementById("view-" + v).hidden = v !== name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === name);
  document.body.dataset.view = name;
  if (name !== "history") history.hide();
  if (name !== "device") deviceView.hide();
  if (name === "history") history.show(query || "").catch(warn);
  else if (name === "event") eventView.show(arg).catch(warn);
  else if (name === "device") deviceView.show(arg).catch(warn);
}

function every(ms, fn) {
  const run = () => {
    if (document.body.classList.contains("locked")) return;
    fn().catch(err => { if (!(err instanceof Unauthorized)) console.warn(err); });
  };
  run(); setInterval(run, ms);
}

function start(loggedIn) {
  document.getElementById("logout").hidden = !loggedIn;
  if (started) {  // logged in again: the polls resume by themselves, the stream does not
    overview.refreshDevices().catch(() => {});
    startFeed();
    route();
    return;
  }
  started = true;
  for (const [ms, fn] of overview.POLLS) every(ms, fn);
  startFeed();
  route();
}

async function boot() {
  document.getElementById("login").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  history.init();
  deviceView.init();
  try {
    const s = await api("/api/session");  // 401: showLogin() ran
    start(s.token_required);
  } catch (err) {
    if (!(err instanceof Unauthorized)) { console.warn(err); start(false); }
  }
}

boot();
