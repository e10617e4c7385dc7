// Batch ids this tab submitted or looked up (sessionStorage): shown even when they are older than
// the first page of GET /v1/batches. (Jobs need no memory: the Jobs view pages GET /v1/jobs.)
const BATCHES = "sagd.batches";

function read(key) {
  try {
    const value = JSON.parse(sessionStorage.getItem(key) || "[]");
    return Array.isArray(value) ? value : [];
  } catch {
    return [];
  }
}

function remember(key, id) {
  const ids = read(key).filter((x) => x !== id);
  ids.unshift(id);
  sessionStorage.setItem(key, JSON.stringify(ids.slice(0, 50)));
}

export const batchIds = () => read(BATCHES);
export const rememberBatch = (id) => remember(BATCHES, id);
