// Traffic: a live tail of the event journal of every server (GET /api/v1/events with
// since=, read twice a second), filtered by server, kind, peer and user, with pause,
// resume and clear. Each event opens to its details; with --trace, the wire lines in
// and out are events of kind "wire" (credentials masked by the server, as in its log).

import { api, health, query } from "./api.js";
import { announce, fill, formatDate, h } from "./dom.js";

const KINDS = ["connect", "disconnect", "auth", "command", "message", "file", "request", "call", "fault", "wire"];
const POLL_MS = 500;
const SHOWN_MAX = 2000; // rows kept in the page; older ones drop off the bottom

/** One line saying what an event was, from its kind and details. */
export function summarize(event) {
  const d = event.details || {};
  switch (event.kind) {
    case "wire":
      return `${d.direction === "in" ? "«" : "»"} ${d.line ?? ""}`;
    case "auth":
      return `login ${d.user ?? "?"} ${d.ok ? "accepted" : "refused"}${d.mechanism || d.method ? ` (${d.mechanism || d.method})` : ""}`;
    case "command":
      return [d.command ?? d.verb ?? d.line ?? d.subsystem ?? d.shell, d.arg].filter((part) => part !== undefined && part !== null).join(" ");
    case "request":
      return d.path !== undefined ? `${d.method} ${d.path} → ${d.status}` : `${d.method ?? "?"}${d.error ? ` error ${d.error}` : ""}`;
    case "message":
      return `from <${d.sender ?? ""}> to ${(d.to || []).join(", ")}${d.size !== undefined ? ` (${d.size} B)` : ""}`;
    case "file":
      return d.path !== undefined
        ? `${d.direction ?? ""} ${d.path} ${d.bytes ?? ""} B${d.complete === false ? " (incomplete)" : ""}`
        : `${d.filename ?? ""} ${d.size ?? ""} B`;
    case "fault":
      return `${d.action} (rule ${d.rule})${d.subject ? ` on ${d.subject}` : ""}`;
    default:
      return Object.entries(d)
        .filter(([, value]) => value !== null && value !== undefined && typeof value !== "object")
        .map(([name, value]) => `${name}=${value}`)
        .join(" ");
  }
}

export function mount(container, params) {
  const filters = {
    server: params.get("server") || "",
    kind: params.get("kind") || "",
    peer: params.get("peer") || "",
    user: params.get("user") || "",
  };
  let since = 0;
  let paused = false;
  let stopped = false;
  let timer = null;
  const userOfPeer = new Map(); // "server peer" -> user, learnt from auth events

  const serverSelect = h("select", { name: "server", "aria-label": "Server" }, h("option", { value: "" }, "all servers"));
  const kindSelect = h(
    "select",
    { name: "kind", "aria-label": "Kind" },
    h("option", { value: "" }, "all kinds"),
    KINDS.map((kind) => h("option", { value: kind, selected: kind === filters.kind }, kind)),
  );
  const peerField = h("input", { type: "search", name: "peer", "aria-label": "Peer", placeholder: "peer", value: filters.peer });
  const userField = h("input", { type: "search", name: "user", "aria-label": "User", placeholder: "user", value: filters.user });
  const pauseButton = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const clearButton = h("button", { type: "button" }, "Clear");
  const count = h("span", { class: "pager", "aria-live": "off" });
  const list = h("ol", { class: "events", "aria-label": "Events", reversed: true });
  const empty = h("p", { class: "empty" }, "Waiting for traffic… Connect a client to any server.");

  container.append(
    h(
      "section",
      { class: "traffic", "aria-label": "Traffic" },
      h(
        "form",
        { class: "toolbar filters", "aria-label": "Filters", onsubmit: (event) => event.preventDefault() },
        serverSelect,
        kindSelect,
        peerField,
        userField,
        pauseButton,
        clearButton,
        h("span", { class: "spacer" }),
        count,
      ),
      h(
        "div",
        { class: "events-head", "aria-hidden": "true" },
        h("span", {}, "Time"),
        h("span", {}, "Server"),
        h("span", {}, "Peer"),
        h("span", {}, "User"),
        h("span", {}, "Kind"),
        h("span", {}, "Summary"),
      ),
      list,
      empty,
    ),
  );

  health()
    .then((body) => {
      const names = (body.servers || []).map((server) => server.name);
      if (filters.server && !names.includes(filters.server)) names.push(filters.server);
      serverSelect.append(...names.map((name) => h("option", { value: name, selected: name === filters.server }, name)));
    })
    .catch(() => {});

  function userOf(event) {
    const d = event.details || {};
    return d.user || d.auth_user || userOfPeer.get(`${event.server} ${event.peer}`) || "";
  }

  function matches(event) {
    return (
      (!filters.server || event.server === filters.server) &&
      (!filters.kind || event.kind === filters.kind) &&
      (!filters.peer || (event.peer || "").includes(filters.peer)) &&
      (!filters.user || userOf(event).includes(filters.user))
    );
  }

  function row(event) {
    const user = userOf(event);
    const details = JSON.stringify(event.details, null, 2);
    return h(
      "li",
      { class: `event kind-${event.kind}`, dataset: { server: event.server, kind: event.kind } },
      h(
        "details",
        {},
        h(
          "summary",
          {},
          h("time", { datetime: new Date(event.time * 1000).toISOString() }, formatDate(event.time)),
          h("span", { class: "server" }, event.server),
          h("span", { class: "peer" }, event.peer || ""),
          h("span", { class: "user" }, user),
          h("span", { class: "kind" }, event.kind),
          h("span", { class: "summary" }, summarize(event)),
        ),
        h(
          "dl",
          { class: "event-details" },
          h("dt", {}, "Event"),
          h("dd", {}, `#${event.id} at ${new Date(event.time * 1000).toISOString()}`),
          h("dt", {}, "Details"),
          h("dd", {}, h("pre", {}, details)),
          h("dt", {}, "Filter"),
          h(
            "dd",
            {},
            h("a", { href: `#/traffic${query({ server: event.server })}` }, `only ${event.server}`),
            " · ",
            h("a", { href: `#/traffic${query({ server: event.server, peer: event.peer })}` }, `only this peer`),
          ),
        ),
      ),
    );
  }

  // the kind filter offers every kind seen, not only the common ones
  const kindsOffered = new Set(KINDS);
  function offerKind(kind) {
    if (kindsOffered.has(kind)) return;
    kindsOffered.add(kind);
    kindSelect.append(h("option", { value: kind, selected: kind === filters.kind }, kind));
  }
  if (filters.kind) offerKind(filters.kind);

  function learn(event) {
    const d = event.details || {};
    if (event.kind === "auth" && d.ok && d.user) userOfPeer.set(`${event.server} ${event.peer}`, d.user);
  }

  async function poll() {
    if (stopped || paused) return;
    try {
      const parameters = since ? { since } : { limit: 500 };
      const body = await api(`/api/v1/events${query(parameters)}`);
      if (stopped) return;
      const events = body.events || [];
      for (const event of events) {
        learn(event);
        offerKind(event.kind);
      }
      const shown = events.filter(matches);
      if (shown.length) {
        // newest first: prepend in reverse order of arrival
        list.prepend(...shown.reverse().map(row));
        while (list.children.length > SHOWN_MAX) list.lastElementChild.remove();
      }
      since = Math.max(since, body.last_id || 0, ...events.map((event) => event.id));
      empty.hidden = list.children.length > 0;
      count.textContent = `${list.children.length} events`;
    } catch (error) {
      announce(`Traffic: ${error.message}`, true);
    } finally {
      if (!stopped && !paused) timer = setTimeout(poll, POLL_MS);
    }
  }

  function restart() {
    clearTimeout(timer);
    since = 0;
    list.replaceChildren();
    const hash = `#/traffic${query(filters)}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    poll();
  }

  serverSelect.addEventListener("change", () => {
    filters.server = serverSelect.value;
    restart();
  });
  kindSelect.addEventListener("change", () => {
    filters.kind = kindSelect.value;
    restart();
  });
  for (const [field, name] of [
    [peerField, "peer"],
    [userField, "user"],
  ]) {
    let typing = null;
    field.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        filters[name] = field.value.trim();
        restart();
      }, 250);
    });
  }
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    announce(paused ? "Traffic paused" : "Traffic resumed");
    clearTimeout(timer);
    if (!paused) poll();
  });
  clearButton.addEventListener("click", () => {
    // Clears this view only; the journal keeps its events for the API and tests.
    list.replaceChildren();
    empty.hidden = false;
    count.textContent = "0 events";
  });

  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
