// The Restore view: upload (or the example), analysis (proposed bands), the method list from
// GET /v1/methods, submission, live progress from GET /v1/jobs/{id}/events (with the learned
// methods' low-resolution previews while they sample), the result with its warnings and what
// was done to each band region.
import { ApiError, api, describe } from "./api.js";
import { BandEditor, paint } from "./editor.js";
import { followJob } from "./events.js";
import { spectrumOf } from "./spectrum.js";
import { $, clearError, el, fmt, say, showError } from "./ui.js";

const state = { file: null, inputUrl: null, resultUrls: [], job: null, editor: null };
// The live preview: its object URL, whether a fetch runs, the newest announced one not fetched,
// and whether previews are still wanted (false once the job has ended).
const live = { url: null, busy: false, next: null, wanted: false, job: null };

export function bandSpec() {
  return state.editor.spec();
}

// Methods that need no model and use no sampling schedule, and those that take models (auto
// optionally: none chosen means none); replaced by GET /v1/methods (needs_model, takes_model)
// once it answers.
let modelFree = new Set(["auto", "notch", "classical"]);
let takesModel = new Set(["auto", "ddnm", "sagd"]);
const summaries = new Map();
const usesSchedule = (method) => !modelFree.has(method);
const acceptsModel = (method) => takesModel.has(method);

// The chosen models (none: the server's default for ddnm and sagd, no model for auto), as the
// API's "name[:version],..." field.
export function chosenModels() {
  return [...$("#model").selectedOptions].map((option) => option.value).filter(Boolean).join(",");
}

// The method, model, steps and schedule fields as form data (shared with batches).
export function runFields(form) {
  const method = $("#method").value;
  form.append("band_spec", JSON.stringify(bandSpec()));
  form.append("method", method);
  form.append("steps", $("#steps").value);
  if ($("#samples").value && $("#samples").value !== "1") form.append("samples", $("#samples").value);
  if (acceptsModel(method) && chosenModels()) form.append("model", chosenModels());
  if (usesSchedule(method)) form.append("schedule", $("#schedule").value);
  return form;
}

function showMethodSummary() {
  const method = $("#method").value;
  $("#method-summary").textContent = summaries.get(method) || "";
}

// The method list from the API: each option "name: summary", the default (auto) first.
export async function loadMethods() {
  try {
    const methods = await api("/v1/methods");
    const select = $("#method");
    const chosen = select.value;
    summaries.clear();
    modelFree = new Set(methods.filter((m) => !m.needs_model).map((m) => m.name));
    takesModel = new Set(methods.filter((m) => m.takes_model ?? m.needs_model).map((m) => m.name));
    select.replaceChildren(...methods.map((m) => {
      summaries.set(m.name, m.summary);
      const unavailable = m.available === false ? " [not on the running workers]" : "";
      return el("option", { value: m.name }, `${m.name}: ${m.summary}${unavailable}`);
    }));
    select.value = methods.some((m) => m.name === chosen) ? chosen : "auto";
    select.dispatchEvent(new Event("change"));
  } catch (err) {
    showError(err, "Methods");
  }
}

function updateRunButton() {
  const ready = state.file !== null && state.editor.regions.length > 0 && state.job === null;
  $("#run").disabled = !ready;
}

async function loadFile(file, { fallbackSpec = null } = {}) {
  clearError();
  state.file = file;
  $("#result").hidden = true;
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(file);
  $("#input-image").src = state.inputUrl;
  $("#input-figure").hidden = false;
  $("#input-caption").textContent = file.name;
  let spectrum = null;
  try {
    spectrum = await spectrumOf(file);
    $("#input-caption").textContent = `${file.name}: ${spectrum.width}×${spectrum.height} pixels`;
  } catch {
    $("#input-caption").textContent = `${file.name}: this browser cannot display it (TIFF?); `
      + "add bands by number, the service decodes it";
  }
  state.editor.setImage(spectrum, spectrum?.height ?? 0, spectrum?.width ?? 0);
  say(`Loaded ${file.name}.`);
  await analyze(file);
  if (fallbackSpec && state.file === file && !state.editor.regions.length) {
    for (const region of fallbackSpec.regions) state.editor.add(region, "the example's band spec");
    $("#analysis-note").textContent += " Using the example's own band spec.";
  }
  updateRunButton();
}

// "Try an example": the shipped image (a synthetic scene with periodic interference) and its
// band spec; the analysis proposes the bands, then the restoration (method auto) starts at once.
async function tryExample() {
  clearError();
  $("#try-example").disabled = true;
  try {
    const [image, spec] = await Promise.all([
      fetch("/static/example.png").then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`)))),
      fetch("/static/example-band.json").then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))),
    ]);
    await loadFile(new File([image], "example.png", { type: "image/png" }), { fallbackSpec: spec });
    $("#method").value = "auto";
    $("#method").dispatchEvent(new Event("change"));
    if (!$("#run").disabled) $("#restore-form").requestSubmit();
  } catch (err) {
    showError(err, "The example");
  } finally {
    $("#try-example").disabled = false;
  }
}

async function analysisResult(response) {
  if (response.status === 200) return response.json();
  const job = await response.json(); // 202: the analysis outlived SAGD_ANALYZE_WAIT_S
  const done = await followJob(job.id, () => {});
  if (done.state === "succeeded") return api(`/v1/jobs/${job.id}/result?part=report`);
  throw new ApiError(422, done.error || { message: `analysis ${done.state}` });
}

async function analyze(file) {
  const note = $("#analysis-note");
  note.textContent = "Analyzing the spectrum for corrupted bands…";
  const form = new FormData();
  form.append("image", file);
  try {
    const analysis = await analysisResult(await api("/v1/analyze", { method: "POST", body: form, as: "response" }));
    if (state.file !== file) return; // another image was loaded meanwhile
    if (analysis.image && !state.editor.size.height) {
      state.editor.size = { height: analysis.image.height, width: analysis.image.width };
    }
    const found = (analysis.band_spec?.units ?? "cycles/pixel") === "cycles/pixel" ? analysis.regions || [] : [];
    for (const item of found) {
      state.editor.add(item.region, `proposed: ${item.source}, ${fmt(item.score_db, 1)} dB`);
    }
    note.textContent = found.length
      ? `The analysis proposed ${found.length} region(s); edit or remove them.`
      : "The analysis found no corrupted band; add regions yourself.";
  } catch (err) {
    note.textContent = err instanceof ApiError && err.status === 501
      ? "No worker can analyze images: add regions yourself."
      : `Analysis failed: ${describe(err)}`;
    if (!(err instanceof ApiError && err.status === 501)) showError(err, "Analysis");
  }
}

function showProgress(job, source = "") {
  const p = job.progress || {};
  $("#progress").value = p.fraction || 0;
  const eta = job.eta_s != null ? `, about ${Math.ceil(job.eta_s)} s left` : "";
  const steps = p.total ? `: step ${p.step} of ${p.total} (${Math.round(100 * p.fraction)}%)${eta}` : "";
  const text = `Job ${job.id.slice(0, 8)} ${job.state}${steps}${p.message ? ` — ${p.message}` : ""}`;
  $("#progress-text").textContent = text;
  if (source) $("#progress-text").dataset.source = source;
  say(text);
}

async function submit(event) {
  event.preventDefault();
  clearError();
  const form = runFields(new FormData());
  form.append("image", state.file);
  let job;
  try {
    job = await api("/v1/restorations", { method: "POST", body: form });
  } catch (err) {
    showError(err, "Restoration refused");
    say("The restoration was refused; see the error.");
    return;
  }
  state.job = job;
  $("#result").hidden = true;
  $("#cancel").hidden = false;
  updateRunButton();
  try {
    await follow(job);
  } finally {
    state.job = null;
    $("#cancel").hidden = true;
    updateRunButton();
  }
}

// A "preview" event: fetch the image it names (one fetch at a time; the newest announced one
// next) and show it, with its number and size, until the result replaces it.
async function showPreview(preview) {
  live.next = preview;
  if (live.busy) return;
  live.busy = true;
  try {
    while (live.next) {
      const { url, number, width, height } = live.next;
      const job = live.job;
      live.next = null;
      const blob = await api(url, { as: "blob" });
      if (!live.wanted || live.job !== job) return; // that job ended: its result shows instead
      if (live.url) URL.revokeObjectURL(live.url);
      live.url = URL.createObjectURL(blob);
      $("#live-preview").src = live.url;
      $("#live-caption").textContent = `Preview ${number} (${width}×${height} pixels): the `
        + "current estimate, low resolution; the result replaces it.";
      $("#live").hidden = false;
    }
  } catch {
    // a preview is advice: a failed fetch (expired, 404 after the job ended) is not an error
  } finally {
    live.busy = false;
  }
}

function hidePreview() {
  live.wanted = false;
  $("#live").hidden = true;
  live.next = null;
  if (live.url) URL.revokeObjectURL(live.url);
  live.url = null;
  $("#live-preview").removeAttribute("src");
}

async function follow(job) {
  showProgress(job);
  hidePreview();
  Object.assign(live, { wanted: true, job: job.id });
  try {
    job = await followJob(job.id, (update) => showProgress(update, "events"), { onPreview: showPreview });
  } catch (err) {
    hidePreview();
    return showError(err, "Lost track of the job");
  }
  hidePreview();
  if (job.state === "succeeded") await showResult(job);
  else if (job.state === "failed") showError(new ApiError(0, job.error || { message: "failed" }), "The job failed");
}

async function showResult(job) {
  try {
    const [image, report] = await Promise.all([
      api(`/v1/jobs/${job.id}/result`, { as: "blob" }),
      api(`/v1/jobs/${job.id}/result?part=report`, { as: "blob" }),
    ]);
    state.resultUrls.forEach((url) => URL.revokeObjectURL(url));
    const imageUrl = URL.createObjectURL(image);
    const reportUrl = URL.createObjectURL(report);
    state.resultUrls = [imageUrl, reportUrl];
    $("#before").src = state.inputUrl;
    $("#after").src = imageUrl;
    Object.assign($("#download"), { href: imageUrl, download: `restored-${job.id}.png` });
    Object.assign($("#report-link"), { href: reportUrl, download: `report-${job.id}.json` });
    showReport(JSON.parse(await report.text()), job);
    $("#result").hidden = false;
    paint($("#spectrum-after"), await spectrumOf(image), bandSpec().regions);
    say(`Job ${job.id.slice(0, 8)} succeeded: the result is below.`);
  } catch (err) {
    showError(err, "Fetching the result");
  }
}

function regionLabel(region) {
  if (!region) return "–";
  const numbers = Object.entries(region).filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.map((x) => fmt(x, 3)).join("…") : fmt(v, 3)}`);
  return `${region.kind} (${numbers.join(", ")})`;
}

// The report next to the result: the method, the warnings, what was done to each region, and
// the scalar fields. `job.result` (the record's summary) stands in for a report without bands.
function showReport(report, job) {
  const summary = job.result || {};
  const warnings = report.warnings || summary.warnings || [];
  $("#warnings").replaceChildren(...warnings.map((w) => el("li", {}, String(w))));
  $("#warnings-box").hidden = warnings.length === 0;
  $("#result-method").textContent = `Method: ${report.method || summary.method || "?"}`
    + (report.model ? `, model ${report.model}` : "");
  const regions = report.band?.regions || [];
  const bands = report.bands || (summary.band_actions || []).map((action) => ({ action }));
  $("#band-actions tbody").replaceChildren(...bands.map((band, i) => el("tr", {},
    el("td", {}, i + 1),
    el("td", {}, regionLabel(regions[i])),
    el("td", { class: "action" }, band.action ?? "–"),
    el("td", {}, band.reason ?? ""))));
  $("#band-actions").hidden = bands.length === 0;
  const rows = Object.entries(report).filter(([, v]) => v === null || typeof v !== "object");
  $("#report").replaceChildren(...rows.flatMap(([key, value]) => [
    el("dt", {}, key),
    el("dd", {}, typeof value === "number" ? fmt(value, 6) : String(value)),
  ]));
}

async function cancel() {
  if (!state.job) return;
  try {
    await api(`/v1/jobs/${state.job.id}`, { method: "DELETE" });
    say("Cancellation requested.");
  } catch (err) {
    showError(err, "Cancel");
  }
}

function setSplit() {
  const value = $("#split").value;
  $("#after").style.clipPath = `inset(0 0 0 ${value}%)`;
}

export function initRestore() {
  state.editor = new BandEditor({
    canvas: $("#spectrum"),
    list: $("#regions"),
    cursor: $("#cursor"),
    json: $("#spec-json"),
    softness: $("#softness"),
    modes: document.querySelector(".modes"),
    onChange: () => updateRunButton(),
  });
  const input = $("#file");
  input.addEventListener("change", () => input.files[0] && loadFile(input.files[0]));
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
  });
  document.querySelectorAll("[data-add]").forEach((button) => {
    button.addEventListener("click", () => state.editor.addDefault(button.dataset.add));
  });
  const modelFields = () => {  // models: learned methods and auto; the schedule: learned only
    const method = $("#method").value;
    $("#model").disabled = !acceptsModel(method);
    $("#schedule").disabled = !usesSchedule(method);
  };
  $("#method").addEventListener("change", modelFields);
  $("#method").addEventListener("change", showMethodSummary);
  modelFields();
  showMethodSummary();
  $("#try-example").addEventListener("click", tryExample);
  $("#restore-form").addEventListener("submit", submit);
  $("#cancel").addEventListener("click", cancel);
  $("#split").addEventListener("input", setSplit);
  setSplit();
}
