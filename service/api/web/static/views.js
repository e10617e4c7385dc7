// The Jobs view (this key's jobs from GET /v1/jobs, filtered and paged; batches with their
// items) and the Models view (the registry).
import { ApiError, TERMINAL, api } from "./api.js";
import { bandSpec, runFields } from "./restore.js";
import { batchIds, rememberBatch } from "./store.js";
import { $, clearError, el, fmt, saveBlob, say, shortId, showError } from "./ui.js";

let refreshTimer = null;
const JOBS_PAGE = 20;
// The cursor (`before`) of each page seen so far: page i is GET /v1/jobs?before=cursors[i].
const paging = { cursors: [null], index: 0, next: null };

const percent = (progress) => `${Math.round(100 * ((progress && progress.fraction) || 0))}%`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

async function fetchOrMissing(path) {
  try {
    return await api(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // expired or another key's
    throw err;
  }
}

function button(label, ariaLabel, action) {
  return el("button", { type: "button", "aria-label": ariaLabel, onclick: action }, label);
}

async function guarded(what, action) {
  clearError();
  try {
    await action();
  } catch (err) {
    showError(err, what);
  }
  await renderJobs();
}

function jobActions(job) {
  const actions = [];
  if (job.state === "succeeded" && job.kind === "restore") {
    actions.push(button("Download", `Download the result of job ${shortId(job.id)}`, () => guarded(
      "Download", async () => saveBlob(await api(`/v1/jobs/${job.id}/result`, { as: "blob" }), `restored-${job.id}.png`),
    )));
  }
  if (job.state === "succeeded") {
    actions.push(button("Report", `Download the report of job ${shortId(job.id)}`, () => guarded(
      "Report", async () => saveBlob(await api(`/v1/jobs/${job.id}/result?part=report`, { as: "blob" }), `report-${job.id}.json`),
    )));
  }
  if (!TERMINAL.has(job.state)) {
    actions.push(button("Cancel", `Cancel job ${shortId(job.id)}`, () => guarded(
      "Cancel", () => api(`/v1/jobs/${job.id}`, { method: "DELETE" }),
    )));
  }
  return actions;
}

function jobRow(id, job) {
  if (!job) return el("tr", {}, el("td", {}, shortId(id)), el("td", { colspan: 5 }, "not found (expired?)"));
  const error = job.error ? ` — ${job.error.code}: ${job.error.message}` : "";
  return el("tr", {},
    el("td", { title: job.id }, shortId(job.id)),
    el("td", {}, job.batch_id ? `${job.kind} (batch ${shortId(job.batch_id)})` : job.kind),
    el("td", { class: `state ${job.state}` }, job.state + error),
    el("td", {}, percent(job.progress)),
    el("td", {}, when(job.timings?.created_at)),
    el("td", {}, ...jobActions(job)));
}

function batchBlock(id, batch) {
  if (!batch) return el("p", {}, `Batch ${shortId(id)}: not found (expired?)`);
  const counts = Object.entries(batch.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
  const final = TERMINAL.has(batch.state) || batch.items.every((item) => TERMINAL.has(item.state));
  const actions = final
    ? [button("Download zip", `Download the results of batch ${shortId(id)}`, () => guarded(
      "Download", async () => saveBlob(await api(`/v1/batches/${id}/result`, { as: "blob" }), `batch-${id}.zip`),
    ))]
    : [button("Cancel batch", `Cancel batch ${shortId(id)}`, () => guarded(
      "Cancel", () => api(`/v1/batches/${id}`, { method: "DELETE" }),
    ))];
  const rows = batch.items.map((item) => el("tr", {},
    el("td", {}, item.index),
    el("td", {}, item.name),
    el("td", { class: `state ${item.state}` }, item.state),
    el("td", {}, percent(item.progress)),
    el("td", {}, item.error ? `${item.error.code}: ${item.error.message}` : "")));
  return el("section", { class: "batch", "aria-label": `Batch ${shortId(id)}` },
    el("h4", {}, `Batch ${shortId(id)} — ${batch.state} (${counts}) `, ...actions),
    el("table", {},
      el("thead", {}, el("tr", {}, ...["#", "Item", "State", "Progress", "Error"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

function jobsPath() {
  const params = new URLSearchParams({ limit: String(JOBS_PAGE) });
  const before = paging.cursors[paging.index];
  if (before !== null) params.set("before", String(before));
  if ($("#jobs-state").value) params.set("state", $("#jobs-state").value);
  if ($("#jobs-kind").value) params.set("kind", $("#jobs-kind").value);
  return `/v1/jobs?${params}`;
}

function turnPage(step) {
  if (step > 0) {
    if (paging.next === null) return;
    paging.cursors[paging.index + 1] = paging.next;
  }
  paging.index = Math.max(0, paging.index + step);
  renderJobs();
}

function resetPaging() {
  Object.assign(paging, { cursors: [null], index: 0, next: null });
  renderJobs();
}

export async function renderJobs() {
  clearTimeout(refreshTimer);
  try {
    // This key's jobs (one page, filtered) and batches, from the listings: a reload loses nothing.
    const [jobList, batchList] = await Promise.all([api(jobsPath()), api("/v1/batches?limit=10")]);
    paging.next = jobList.next_before;
    $("#jobs-older").disabled = paging.next === null;
    $("#jobs-newer").disabled = paging.index === 0;
    $("#jobs-page").textContent = `page ${paging.index + 1}`;
    const rows = jobList.items.map((job) => jobRow(job.id, job));
    const empty = $("#jobs-state").value || $("#jobs-kind").value ? "No jobs match." : "No jobs yet.";
    $("#jobs-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6 }, empty))]));
    const ids = [...new Set([...batchList.items.map((b) => b.id), ...batchIds()])];
    const batches = await Promise.all(ids.map((id) => fetchOrMissing(`/v1/batches/${id}`)));
    const blocks = ids.map((id, i) => batchBlock(id, batches[i]));
    $("#batches").replaceChildren(...(blocks.length ? blocks : [el("p", {}, "No batches yet.")]));
    const busy = [...jobList.items, ...batches].some((x) => x && !TERMINAL.has(x.state));
    if (busy && !$("#view-jobs").hidden) refreshTimer = setTimeout(renderJobs, 1500);
  } catch (err) {
    showError(err, "Jobs");
  }
}

async function lookup(event) {
  event.preventDefault();
  const id = $("#lookup-id").value.trim().toLowerCase();
  const out = $("#lookup-result");
  await guarded("Look up", async () => {
    const job = await fetchOrMissing(`/v1/jobs/${id}`);
    if (job) {
      const error = job.error ? ` — ${job.error.code}: ${job.error.message}` : "";
      out.replaceChildren(`Job ${shortId(job.id)} (${job.kind}): ${job.state}, ${percent(job.progress)}${error} `,
        ...jobActions(job));
      return;
    }
    if (await fetchOrMissing(`/v1/batches/${id}`)) {
      out.textContent = `Batch ${shortId(id)}: shown under Batches.`;
      return rememberBatch(id);
    }
    out.textContent = "";
    throw new ApiError(404, { code: "not_found", message: `no job or batch ${id} for this key` });
  });
}

async function submitBatch(event) {
  event.preventDefault();
  const files = [...$("#batch-files").files];
  await guarded("Batch refused", async () => {
    if (!bandSpec().regions.length) {
      throw new ApiError(0, { code: "no_bands", message: "add at least one region in the Restore view" });
    }
    const form = runFields(new FormData());
    const zips = files.filter((f) => f.name.toLowerCase().endsWith(".zip"));
    if (zips.length > 1) throw new ApiError(0, { code: "invalid_archive", message: "send at most one zip" });
    files.filter((f) => !zips.includes(f)).forEach((f) => form.append("images", f));
    if (zips.length) form.append("archive", zips[0]);
    const batch = await api("/v1/batches", { method: "POST", body: form });
    rememberBatch(batch.id);
    say(`Batch ${shortId(batch.id)} queued with ${batch.items.length} item(s).`);
  });
}

// ---- models ----
function versionRow(model, v) {
  const isDefault = v.version === model.default_version;
  const scores = Object.entries(v.scores || {}).map(([k, s]) => `${k}=${typeof s === "number" ? fmt(s) : s}`).join(", ");
  const action = isDefault ? "default" : button("Make default", `Make version ${v.version} the default of ${model.name}`,
    async () => {
      clearError();
      try {
        await api(`/v1/models/${model.name}/default-version`, { method: "PUT", json: { version: v.version } });
        say(`${model.name} now defaults to version ${v.version}.`);
      } catch (err) {
        showError(err, "Default version");
      }
      await loadModels();
    });
  return el("tr", {},
    el("td", {}, v.version),
    el("td", {}, v.kind || "–"),
    el("td", { class: "mono" }, v.band ? JSON.stringify(v.band.regions ?? v.band) : "–"),
    el("td", { class: "mono", title: v.data_hash || "" }, v.data_hash ? v.data_hash.slice(0, 12) : "–"),
    el("td", {}, scores || "–"),
    el("td", {}, when(v.created_at)),
    el("td", {}, action));
}

// The model list (several may be chosen: an omission model and a band model, or a model and
// the default); the choice survives a refresh.
function fillModelSelect(models) {
  const select = $("#model");
  const chosen = new Set([...select.selectedOptions].map((o) => o.value));
  const options = [];
  for (const model of models) {
    const kinds = [...new Set(model.versions.map((v) => v.kind || "?"))].join("/");
    options.push(el("option", { value: model.name }, `${model.name} (default v${model.default_version}, ${kinds})`));
    for (const v of model.versions) {
      options.push(el("option", { value: `${model.name}:${v.version}` }, `${model.name}:${v.version} (${v.kind || "?"})`));
    }
  }
  for (const option of options) option.selected = chosen.has(option.value);
  select.replaceChildren(...options);
}

export async function loadModels() {
  try {
    const models = await api("/v1/models");
    fillModelSelect(models);
    const heads = ["Version", "Kind", "Band", "Data hash", "Scores", "Created", ""];
    const blocks = models.map((model) => el("section", { class: "model", "aria-label": `Model ${model.name}` },
      el("h3", {}, `${model.name} (default version ${model.default_version})`),
      el("table", {},
        el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, model.versions.map((v) => versionRow(model, v))))));
    $("#models").replaceChildren(...(blocks.length ? blocks
      : [el("p", {}, "No models are registered yet: method notch needs none.")]));
  } catch (err) {
    $("#models").replaceChildren(el("p", {}, "The registry could not be loaded."));
    showError(err, "Models");
  }
}

export function initViews() {
  $("#lookup-form").addEventListener("submit", lookup);
  $("#batch-form").addEventListener("submit", submitBatch);
  $("#jobs-refresh").addEventListener("click", renderJobs);
  $("#jobs-state").addEventListener("change", resetPaging);
  $("#jobs-kind").addEventListener("change", resetPaging);
  $("#jobs-older").addEventListener("click", () => turnPage(1));
  $("#jobs-newer").addEventListener("click", () => turnPage(-1));
  $("#models-refresh").addEventListener("click", loadModels);
}
