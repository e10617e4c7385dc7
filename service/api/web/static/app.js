// Entry point: the view tabs, the API key box, and the first load.
import { apiKey, setApiKey } from "./api.js";
import { initRestore, loadMethods } from "./restore.js";
import { $, clearError, say } from "./ui.js";
import { initViews, loadModels, renderJobs } from "./views.js";

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  if (view === "jobs") renderJobs();
  if (view === "models") loadModels();
}

function initKey() {
  $("#api-key").value = apiKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("#api-key").value.trim());
    clearError();
    say($("#api-key").value.trim() ? "API key set for this tab." : "API key cleared.");
    loadModels();
    loadMethods();
  });
  $("#key-forget").addEventListener("click", () => {
    $("#api-key").value = "";
    setApiKey("");
    say("API key forgotten.");
  });
}

for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
initKey();
initRestore();
initViews();
loadMethods();
loadModels();
