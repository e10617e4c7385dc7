// The /v1 API from the browser: the optional key, JSON errors {code, message, request_id}.
const KEY = "sagd.apiKey";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.message || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || `http_${status}`;
    this.requestId = problem.request_id || null;
    this.details = Array.isArray(problem.details) ? problem.details : null;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

// fetch() with the key; throws ApiError for network failures and non-2xx answers.
// `as`: "json" (default), "blob", or "response" (the raw Response: 202 + Location, streams).
// `signal`: an AbortSignal; `accept`: the Accept header.
export async function api(path, { method = "GET", body, json, as = "json", signal, accept } = {}) {
  const headers = {};
  if (accept) headers.Accept = accept;
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, body, headers, signal });
  } catch (err) {
    throw new ApiError(0, { code: "network_error", message: `cannot reach the service (${err.message})` });
  }
  if (!response.ok) {
    let problem;
    try {
      problem = await response.json();
    } catch {
      problem = { message: response.statusText || `HTTP ${response.status}` };
    }
    problem.request_id = problem.request_id || response.headers.get("X-Request-ID");
    throw new ApiError(response.status, problem);
  }
  if (as === "response") return response;
  if (as === "blob") return response.blob();
  return response.json();
}

// One readable line: "422 ill_posed_band: … — field: reason (request id …)".
export function describe(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  let text = `${err.status ? `${err.status} ` : ""}${err.code}: ${err.message}`;
  if (err.details) {
    text += " — " + err.details.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  if (err.requestId) text += ` (request id ${err.requestId})`;
  return text;
}

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
