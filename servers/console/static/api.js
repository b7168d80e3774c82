// The admin API, as the console calls it: same origin, JSON in and out. Every
// mutating request carries Content-Type: application/json (the admin API's
// cross-site rule), with an empty JSON object when there is nothing to send.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function errorOf(response) {
  const text = await response.text();
  let body = text;
  let message = text.trim() || `${response.status} ${response.statusText}`;
  try {
    body = JSON.parse(text);
    if (body && typeof body === "object") message = body.error || body.Error || message;
  } catch {
    // Mailpit answers some errors as plain text; keep the text as the message.
  }
  return new ApiError(response.status, message, body);
}

/** fetch(path) with the console's rules; returns parsed JSON, text or a Response. */
export async function api(path, { method = "GET", json, body, contentType, as = "json", signal } = {}) {
  const headers = {};
  let payload = body;
  if (method !== "GET" && method !== "HEAD") {
    if (json !== undefined || body === undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json === undefined ? {} : json);
    } else {
      headers["Content-Type"] = contentType || "application/octet-stream";
    }
  }
  const response = await fetch(path, { method, headers, body: payload, signal, credentials: "same-origin" });
  if (!response.ok) throw await errorOf(response);
  if (as === "text") return response.text();
  if (as === "response") return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export function query(parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The servers of /health, cached for a few seconds (several views ask at once). */
let healthCache = null;
export async function health() {
  if (healthCache && Date.now() - healthCache.at < 3000) return healthCache.promise;
  const promise = fetch("/health").then((response) => response.json());
  healthCache = { at: Date.now(), promise };
  try {
    return await promise;
  } catch (error) {
    healthCache = null;
    throw error;
  }
}

export function serverNamed(healthBody, name) {
  return (healthBody.servers || []).find((server) => server.name === name);
}
