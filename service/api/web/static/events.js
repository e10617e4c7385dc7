// Follow a job live: GET /v1/jobs/{id}/events (server-sent events), read with fetch() so that
// the API key travels in a header as on every other call (EventSource cannot send one).
// Events: "state" and "progress" carry the job as GET /v1/jobs/{id} shows it; the stream ends
// after the final state; "timeout" (the server's maximum duration) and a dropped connection
// reconnect; "error" {code: "not_found"} means the record expired. With an onPreview handler the
// stream is opened with ?preview=1 and "preview" events ({number, width, height, url}: a learned
// restoration's latest low-resolution estimate) go to it.
import { ApiError, TERMINAL, api, sleep } from "./api.js";

// One frame's text (lines up to a blank line) -> {event, data, id} (data parsed as JSON), or
// null for a comment-only or retry-only frame.
export function parseFrame(text) {
  const frame = { event: "message", data: null, id: null };
  const data = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") frame.event = value;
    else if (name === "id") frame.id = value;
    else if (name === "data") data.push(value);
  }
  if (!data.length) return null;
  frame.data = JSON.parse(data.join("\n"));
  return frame;
}

// Read one stream; calls onJob(job) for each state/progress event and onPreview(data) for each
// preview event. Returns the final job, or null when the stream ended before it (timeout,
// dropped): the caller reconnects.
async function readStream(response, onJob, onPreview) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buffer = (buffer + value).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = parseFrame(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!frame) continue;
        if (frame.event === "state" || frame.event === "progress") {
          onJob(frame.data);
          if (TERMINAL.has(frame.data.state)) return frame.data;
        } else if (frame.event === "preview") {
          onPreview?.(frame.data);
        } else if (frame.event === "error" && frame.data.code === "not_found") {
          throw new ApiError(404, frame.data);
        } else if (frame.event === "timeout" || frame.event === "error") {
          return null;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Follow job `id` until its final state; onJob(job) on every change, onPreview(data) on every
// new preview (asked for only when given). Throws ApiError on a refusal (4xx) or after `tries`
// failed connections in a row.
export async function followJob(id, onJob, { signal, tries = 5, onPreview = null } = {}) {
  const path = `/v1/jobs/${id}/events${onPreview ? "?preview=1" : ""}`;
  let failures = 0;
  for (;;) {
    let response;
    try {
      response = await api(path, { as: "response", signal, accept: "text/event-stream" });
    } catch (err) {
      const refused = err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429;
      if (refused || ++failures >= tries) throw err;
      await sleep(1000 * failures);
      continue;
    }
    let job = null;
    try {
      job = await readStream(response, onJob, onPreview);
      failures = 0;
    } catch (err) {
      if (err instanceof ApiError || signal?.aborted || ++failures >= tries) throw err;
    }
    if (job) return job;
    await sleep(300);
  }
}
