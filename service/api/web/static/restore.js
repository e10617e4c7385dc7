// The Restore view: upload, analysis (proposed bands), submission, live progress, result.
import { ApiError, TERMINAL, api, describe, sleep } from "./api.js";
import { BandEditor, paint } from "./editor.js";
import { spectrumOf } from "./spectrum.js";
import { rememberJob } from "./store.js";
import { $, clearError, el, fmt, say, showError } from "./ui.js";

const POLL_MS = 400;
const state = { file: null, inputUrl: null, resultUrls: [], job: null, editor: null };

export function bandSpec() {
  return state.editor.spec();
}

// Methods that use no model and no sampling schedule (sagd_core.restore.request).
const MODEL_FREE = ["auto", "notch", "classical"];
const usesModel = (method) => !MODEL_FREE.includes(method);

// The method, model, steps and schedule fields as form data (shared with batches).
export function runFields(form) {
  const method = $("#method").value;
  form.append("band_spec", JSON.stringify(bandSpec()));
  form.append("method", method);
  form.append("steps", $("#steps").value);
  if (usesModel(method) && $("#model").value) form.append("model", $("#model").value);
  if (usesModel(method)) form.append("schedule", $("#schedule").value);
  return form;
}

function updateRunButton() {
  const ready = state.file !== null && state.editor.regions.length > 0 && state.job === null;
  $("#run").disabled = !ready;
}

async function loadFile(file) {
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
  updateRunButton();
}

async function analysisResult(response) {
  if (response.status === 200) return response.json();
  const job = await response.json(); // 202: the analysis outlived SAGD_ANALYZE_WAIT_S
  for (;;) {
    await sleep(POLL_MS);
    const now = await api(`/v1/jobs/${job.id}`);
    if (now.state === "succeeded") return api(`/v1/jobs/${job.id}/result?part=report`);
    if (TERMINAL.has(now.state)) throw new ApiError(422, now.error || { message: `analysis ${now.state}` });
  }
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

function showProgress(job) {
  const p = job.progress || {};
  $("#progress").value = p.fraction || 0;
  const eta = job.eta_s != null ? `, about ${Math.ceil(job.eta_s)} s left` : "";
  const steps = p.total ? `: step ${p.step} of ${p.total} (${Math.round(100 * p.fraction)}%)${eta}` : "";
  const text = `Job ${job.id.slice(0, 8)} ${job.state}${steps}${p.message ? ` — ${p.message}` : ""}`;
  $("#progress-text").textContent = text;
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
  rememberJob(job.id);
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

async function follow(job) {
  let failures = 0;
  while (!TERMINAL.has(job.state)) {
    showProgress(job);
    await sleep(POLL_MS);
    try {
      job = await api(`/v1/jobs/${job.id}`);
      failures = 0;
    } catch (err) {
      if (++failures >= 5) return showError(err, "Lost track of the job");
    }
  }
  showProgress(job);
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
    showReport(JSON.parse(await report.text()));
    $("#result").hidden = false;
    paint($("#spectrum-after"), await spectrumOf(image), bandSpec().regions);
    say(`Job ${job.id.slice(0, 8)} succeeded: the result is below.`);
  } catch (err) {
    showError(err, "Fetching the result");
  }
}

function showReport(report) {
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
  const learnedOnly = () => {  // model-free methods use no model and no schedule
    const free = !usesModel($("#method").value);
    $("#model").disabled = free;
    $("#schedule").disabled = free;
  };
  $("#method").addEventListener("change", learnedOnly);
  learnedOnly();
  $("#restore-form").addEventListener("submit", submit);
  $("#cancel").addEventListener("click", cancel);
  $("#split").addEventListener("input", setSplit);
  setSplit();
}
