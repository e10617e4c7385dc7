// Small DOM helpers and the page-wide status (aria-live) and error (role=alert) regions.
import { ApiError, describe } from "./api.js";

export const $ = (selector) => document.querySelector(selector);

// el("td", {class: "x"}, "text", childNode): text is always set as text, never parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

export function say(text) {
  $("#status").textContent = text;
}

export function showError(err, context = "") {
  const box = $("#error");
  box.textContent = (context ? `${context}: ` : "") + describe(err);
  box.hidden = false;
  if (err instanceof ApiError && err.status === 401) {
    $("#key-box").open = true;
    $("#api-key").focus();
  }
}

export function clearError() {
  const box = $("#error");
  box.textContent = "";
  box.hidden = true;
}

export function shortId(id) {
  return String(id).slice(0, 8);
}

export function fmt(value, digits = 4) {
  return Number.isFinite(value) ? Number(value.toFixed(digits)).toString() : "–";
}

// Save a Blob through a temporary link (downloads that need the API key cannot be plain links).
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
