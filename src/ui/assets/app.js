// Capstan's own page script: live rows over Server-Sent Events, client-side filters, and the
// buttons that call the REST API with the session's CSRF token. Plain ES, no dependencies.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function toast(text, bad) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = (bad ? "✖ " : "✔ ") + text;
  t.className = bad ? "show bad" : "show";
}

// Calls the REST API as the CLI does; the cookie authenticates, the header proves the page.
async function api(method, path, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (_) { /* an empty answer */ }
  if (!resp.ok) throw new Error((data && data.error) || resp.status + " " + resp.statusText);
  return data;
}

// ---- Applications list: filters and pages ----
// The server filters and pages the list (ListQuery in src/ui/applications.rs); the page hides
// non-matching rows at once, then re-reads the list from the server.
function filterValues() {
  const want = {};
  document.querySelectorAll("#filters [data-filter]").forEach((el) => { want[el.dataset.filter] = el.value.trim().toLowerCase(); });
  return want;
}

// The server's rule for one row, applied to live rows.
function admits(tr, want) {
  const d = tr.dataset;
  for (const f of ["sync", "health", "project", "cluster", "namespace"]) {
    if (want[f] && (d[f] || "").toLowerCase() !== want[f]) return false;
  }
  if (want.label) {
    const labels = (d.labels || "").toLowerCase().split(" ");
    const bare = !want.label.includes("=");
    if (!labels.some((l) => l === want.label || (bare && l.split("=")[0] === want.label))) return false;
  }
  return !want.search || tr.textContent.toLowerCase().includes(want.search);
}

function applyFilters() {
  const rows = document.getElementById("app-rows");
  if (!rows) return;
  const want = filterValues();
  for (const tr of rows.children) tr.hidden = !admits(tr, want);
}

function countText() {
  const list = document.getElementById("app-list");
  const rows = document.getElementById("app-rows");
  const count = document.getElementById("app-count");
  if (!list || !rows || !count) return;
  const first = +list.dataset.first;
  const n = rows.children.length;
  const matching = +list.dataset.matching;
  count.textContent = n === 0 ? "No applications match." : "Showing " + (first + 1) + "–" + (first + n) + " of " + matching + " applications";
}

let listRequest = 0;
async function reloadList(page) {
  const form = document.getElementById("filters");
  if (!form) return;
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim()) params.set(k, String(v).trim());
  if (page > 1) params.set("page", page);
  const query = params.toString();
  const url = "/" + (query ? "?" + query : "");
  const mine = ++listRequest;
  const resp = await fetch(url, { credentials: "same-origin" });
  if (!resp.ok || mine !== listRequest) return;
  const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
  const fresh = doc.getElementById("app-list");
  const list = document.getElementById("app-list");
  if (!fresh || !list || mine !== listRequest) return;
  list.replaceWith(document.adoptNode(fresh));
  history.replaceState(null, "", url);
}

let filterTimer = null;
function filtersChanged(e) {
  if (!e.target.matches?.("[data-filter]")) return;
  applyFilters();
  clearTimeout(filterTimer);
  // Typing waits for a pause; a choice applies at once.
  filterTimer = setTimeout(() => reloadList(1), e.target.tagName === "SELECT" ? 0 : 300);
}

// ---- Live updates ----
function liveState(on) {
  const s = document.getElementById("live-state");
  if (!s) return;
  s.dataset.live = on ? "on" : "off";
  s.textContent = on ? "● Live" : "○ Reconnecting…";
}

function startStream(onChange) {
  const url = document.querySelector("[data-stream]")?.dataset.stream;
  if (!url) return;
  const es = new EventSource(url, { withCredentials: true });
  es.addEventListener("ready", () => liveState(true));
  es.addEventListener("error", () => liveState(false));
  es.addEventListener("resync", () => location.reload());
  es.addEventListener("upsert", (e) => onChange("upsert", JSON.parse(e.data)));
  es.addEventListener("delete", (e) => onChange("delete", JSON.parse(e.data)));
}

function patchRow(kind, msg) {
  const list = document.getElementById("app-list");
  const rows = document.getElementById("app-rows");
  if (!rows || !list) return;
  const old = rows.querySelector('tr[data-key="' + CSS.escape(msg.key) + '"]');
  if (kind === "delete") {
    if (old) { old.remove(); list.dataset.matching = +list.dataset.matching - 1; countText(); }
    return;
  }
  const tpl = document.createElement("template");
  tpl.innerHTML = msg.html.trim();
  const fresh = tpl.content.firstElementChild;
  if (!fresh) return;
  if (old) old.replaceWith(fresh);
  else if (admits(fresh, filterValues())) {
    // An app that now matches joins this page when its key falls within the page (rows are
    // sorted by key, as the server renders them); otherwise it belongs to another page.
    const next = [...rows.children].find((tr) => tr.dataset.key > msg.key);
    const before = +list.dataset.page > 1 && next === rows.firstElementChild;
    const after = !next && rows.children.length >= +list.dataset.perPage;
    if (!before && !after) {
      rows.insertBefore(fresh, next || null);
      if (rows.children.length > +list.dataset.perPage) rows.lastElementChild.remove();
      list.dataset.matching = +list.dataset.matching + 1;
      document.getElementById("no-apps")?.remove();
    }
  }
  // A new project, cluster or namespace becomes a filter choice too.
  for (const f of ["project", "cluster", "namespace"]) {
    const select = document.querySelector('select[data-filter="' + f + '"]');
    const v = fresh.dataset[f];
    if (select && v && ![...select.options].some((o) => o.value === v)) select.add(new Option(v, v));
  }
  applyFilters();
  countText();
}

// ---- Application page ----
function appPage() { return document.getElementById("app-page"); }

async function reloadSummary() {
  const page = appPage();
  const target = document.getElementById("summary");
  if (!page || !target) return;
  const resp = await fetch(page.dataset.summary, { credentials: "same-origin" });
  if (resp.ok) target.innerHTML = await resp.text();
}

function dialog(id) { return document.getElementById(id); }

async function act(button) {
  const page = appPage();
  const base = page.dataset.api;
  const action = button.dataset.action;
  try {
    if (action === "refresh") await api("POST", base + "/refresh");
    else if (action === "hard-refresh") await api("POST", base + "/refresh?hard=true");
    else if (action === "sync-open") { dialog("sync-dialog").showModal(); return; }
    else if (action === "delete-open") { dialog("delete-dialog").showModal(); return; }
    else if (action === "rollback") {
      if (!confirm("Roll back to history entry " + button.dataset.id + " (revision " + button.dataset.revision + ")?")) return;
      await api("POST", base + "/rollback", { id: Number(button.dataset.id) });
    } else return;
    toast(button.textContent.trim() + ": queued");
  } catch (e) { toast(e.message, true); }
}

async function submitSync(form) {
  const base = appPage().dataset.api;
  const resources = [...form.querySelectorAll('input[name="resource"]:checked')].map((c) => JSON.parse(c.value));
  const body = { prune: form.prune.checked, dryRun: form.dryRun.checked, resources };
  try {
    await api("POST", base + "/sync", body);
    toast("Sync queued" + (body.prune ? " (prune)" : "") + (body.dryRun ? " (dry run)" : ""));
  } catch (e) { toast(e.message, true); }
}

async function submitDelete(form) {
  const page = appPage();
  if (form.confirmName.value !== page.dataset.name) {
    document.getElementById("delete-error").textContent = "Type the application name exactly to delete it.";
    return false;
  }
  try {
    await api("DELETE", page.dataset.api);
    location.assign("/");
  } catch (e) { toast(e.message, true); }
  return true;
}

async function openNode(node) {
  const page = appPage();
  const panel = document.getElementById("node-panel");
  const d = node.dataset;
  document.querySelectorAll(".node[aria-pressed]").forEach((n) => n.setAttribute("aria-pressed", "false"));
  node.setAttribute("aria-pressed", "true");
  const q = new URLSearchParams({ group: d.group, version: d.version, kind: d.kind, namespace: d.namespace, name: d.name });
  panel.hidden = false;
  panel.querySelector(".panel-title").textContent = d.kind + " " + d.name;
  const live = panel.querySelector("#panel-live");
  live.textContent = "Loading…";
  const resp = await fetch(page.dataset.resource + "?" + q, { credentials: "same-origin" });
  live.innerHTML = resp.ok ? await resp.text() : "✖ " + resp.status;
  const desired = panel.querySelector("#panel-desired");
  const diff = panel.querySelector("#panel-diff");
  desired.textContent = diff.textContent = "";
  if (d.managed !== "true") {
    desired.textContent = "Not in Git: owned by another object.";
    diff.textContent = "Not in Git: owned by another object.";
  } else {
    const same = (o) => (o.group ?? "") === d.group && o.kind === d.kind && (o.namespace ?? "") === d.namespace && o.name === d.name;
    api("GET", page.dataset.api + "/manifests").then((m) => {
      const obj = m.manifests.find((o) => {
        const [g] = (o.apiVersion || "").includes("/") ? o.apiVersion.split("/") : [""];
        return same({ group: g, kind: o.kind, namespace: o.metadata?.namespace, name: o.metadata?.name });
      });
      desired.textContent = obj ? JSON.stringify(obj, null, 2) : "Not rendered from Git.";
    }).catch((e) => { desired.textContent = "✖ " + e.message; });
    api("GET", page.dataset.api + "/diff").then((r) => {
      const item = r.items.find(same);
      diff.textContent = item ? (item.diff || "No difference.") : "No difference.";
    }).catch((e) => { diff.textContent = "✖ " + e.message; });
  }
  panel.querySelector(".panel-title").focus();
}

// ---- Create ----
async function submitCreate(form) {
  const out = document.getElementById("create-result");
  let doc;
  try {
    if (form.id === "create-yaml") {
      doc = { __yaml: form.yaml.value };
    } else {
      const f = form.elements;
      const syncOptions = f.syncOptions.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
      const spec = {
        project: f.project.value || "default",
        source: { repoURL: f.repoURL.value, path: f.path.value, targetRevision: f.targetRevision.value || "HEAD" },
        destination: { namespace: f.destNamespace.value },
      };
      if (f.clusterServer.value) spec.destination.server = f.clusterServer.value;
      if (f.clusterName.value) spec.destination.name = f.clusterName.value;
      if (f.auto.checked || syncOptions.length) {
        spec.syncPolicy = { syncOptions };
        if (f.auto.checked) spec.syncPolicy.automated = { prune: f.prune.checked, selfHeal: f.selfHeal.checked };
      }
      doc = { apiVersion: "capstan.dev/v1alpha1", kind: "Application", metadata: { name: f.name.value }, spec };
    }
    let created;
    if (doc.__yaml !== undefined) {
      const resp = await fetch("/create/yaml", { method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/yaml" }, body: doc.__yaml });
      const data = await resp.json().catch(() => null);
      if (!resp.ok) throw new Error((data && data.error) || String(resp.status));
      created = data;
    } else {
      created = await api("POST", "/api/v1/applications", doc);
    }
    location.assign("/applications/" + created.metadata.namespace + "/" + created.metadata.name);
  } catch (e) {
    out.textContent = "✖ " + e.message;
    out.focus();
  }
}

// ---- Wiring ----
document.addEventListener("DOMContentLoaded", () => {
  // Delegated: the per-page choice and the pager are replaced with the list.
  document.addEventListener("input", (e) => { if (e.target.tagName !== "SELECT") filtersChanged(e); });
  document.addEventListener("change", (e) => { if (e.target.tagName === "SELECT") filtersChanged(e); });
  document.querySelector("form.filters")?.addEventListener("submit", (e) => { e.preventDefault(); reloadList(1); });
  document.addEventListener("click", (e) => {
    const a = e.target.closest?.(".pager a[data-page]");
    if (!a) return;
    e.preventDefault();
    reloadList(+a.dataset.page);
  });
  if (document.getElementById("app-rows")) startStream(patchRow);
  const page = appPage();
  if (page) {
    startStream((kind, msg) => {
      if (msg.key !== page.dataset.key) return;
      if (kind === "delete") { toast("This application was deleted", true); return; }
      reloadSummary();
    });
    page.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action]");
      if (b) { act(b); return; }
      const n = e.target.closest(".node");
      if (n) openNode(n);
    });
    dialog("sync-dialog")?.querySelector("form").addEventListener("submit", (e) => {
      if (e.submitter?.value === "sync") submitSync(e.target);
    });
    dialog("delete-dialog")?.querySelector("form").addEventListener("submit", (e) => {
      if (e.submitter?.value !== "delete") return;
      e.preventDefault();
      submitDelete(e.target).then((done) => { if (done) dialog("delete-dialog").close(); });
    });
  }
  document.querySelectorAll("form.create").forEach((f) => f.addEventListener("submit", (e) => { e.preventDefault(); submitCreate(f); }));
});
