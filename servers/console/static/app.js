// The console's router: the hash names the view and its parameters, so every view has
// a deep link (#/inbox, #/message/{id}, #/traffic?server=ftp, #/files?user=demo...).
// Each view module exports mount(container, parameters) and returns its cleanup.

import * as inbox from "./inbox.js";
import * as message from "./message.js";
import * as traffic from "./traffic.js";
import * as files from "./files.js";
import * as faults from "./faults.js";
import * as servers from "./servers.js";
import { announce } from "./dom.js";

// first hash segment -> [view module, navigation entry it belongs to, title]
const VIEWS = {
  inbox: [inbox, "inbox", "Inbox"],
  message: [message, "inbox", "Message"],
  traffic: [traffic, "traffic", "Traffic"],
  files: [files, "files", "Files"],
  faults: [faults, "faults", "Faults"],
  servers: [servers, "servers", "Servers"],
};

let cleanup = null;

/** "#/message/abc?x=1" -> {name: "message", rest: ["abc"], params: URLSearchParams} */
export function parseHash(hash) {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const [name, ...rest] = path.split("/").map(decodeURIComponent);
  return { name: name || "inbox", rest, params: new URLSearchParams(search) };
}

function route() {
  const { name, rest, params } = parseHash(location.hash);
  const [view, navigation, title] = VIEWS[name] || VIEWS.inbox;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === navigation) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${title} · refservers`;
  if (cleanup) cleanup();
  cleanup = null;
  announce("");
  const container = document.getElementById("view");
  container.replaceChildren();
  container.dataset.view = name;
  try {
    cleanup = view.mount(container, params, rest) || null;
  } catch (error) {
    announce(String(error), true);
  }
}

window.addEventListener("hashchange", route);
route();
