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

// ---- Applications list: filters ----
function applyFilters() {
  const rows = document.getElementById("app-rows");
  if (!rows) return;
  const want = {};
  document.querySelectorAll("[data-filter]").forEach((el) => { want[el.dataset.filter] = el.value.trim().toLowerCase(); });
  let shown = 0;
  for (const tr of rows.children) {
    const d = tr.dataset;
    let ok = true;
    for (const f of ["sync", "health", "project", "cluster", "namespace"]) {
      if (want[f] && (d[f] || "").toLowerCase() !== want[f]) ok = false;
    }
    if (ok && want.label) ok = (d.labels || "").toLowerCase().split(" ").includes(want.label);
    if (ok && want.search) ok = tr.textContent.toLowerCase().includes(want.search);
    tr.hidden = !ok;
    if (ok) shown++;
  }
  const count = document.getElementById("app-count");
  if (count) count.textContent = shown + " of " + rows.children.length + " applications";
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
  const rows = document.getElementById("app-rows");
  if (!rows) return;
  const old = rows.querySelector('tr[data-key="' + CSS.escape(msg.key) + '"]');
  if (kind === "delete") { old?.remove(); applyFilters(); return; }
  const tpl = document.createElement("template");
  tpl.innerHTML = msg.html.trim();
  const fresh = tpl.content.firstElementChild;
  if (!fresh) return;
  if (old) old.replaceWith(fresh);
  else {
    // Keep the rows sorted by key, as the server renders them.
    const next = [...rows.children].find((tr) => tr.dataset.key > msg.key);
    rows.insertBefore(fresh, next || null);
    document.getElementById("no-apps")?.remove();
  }
  // A new project, cluster or namespace becomes a filter choice too.
  for (const f of ["project", "cluster", "namespace"]) {
    const select = document.querySelector('select[data-filter="' + f + '"]');
    const v = fresh.dataset[f];
    if (select && v && ![...select.options].some((o) => o.value === v)) select.add(new Option(v, v));
  }
  applyFilters();
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
  document.querySelectorAll("[data-filter]").forEach((el) => {
    el.addEventListener("input", applyFilters);
    el.addEventListener("change", applyFilters);
  });
  document.querySelector("form.filters")?.addEventListener("submit", (e) => e.preventDefault());
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
