// One message: its HTML in a sandboxed frame, the text part, the headers, the raw
// source, the attachments, the SMTP envelope, and imap:// / pop3:// hints.
//
// The HTML frame: a srcdoc iframe with sandbox="allow-popups allow-popups-to-escape-sandbox"
// (never allow-scripts or allow-same-origin: it can neither run script nor reach this
// page), and a Content-Security-Policy of its own as its first element, which allows
// no script at all, inline styles, and images only from this origin and data: URLs
// until "Load remote images" is pressed. Links open in a new tab (base target=_blank).

import { api, health, serverNamed } from "./api.js";
import { announce, confirmAction, copyButton, fill, formatAddress, formatDate, formatSize, h } from "./dom.js";
import { onMailEvent } from "./events.js";

const TABS = ["HTML", "Text", "Headers", "Raw", "Attachments"];

function partUrl(id, partId) {
  return `/api/v1/message/${encodeURIComponent(id)}/part/${encodeURIComponent(partId)}`;
}

// Attributes through which a document loads something by itself (links are followed
// only when clicked, so <a href> stays).
const LOADING_ATTRIBUTES = new Set(["src", "srcset", "background", "poster", "data", "xlink:href", "lowsrc", "dynsrc", "imagesrcset"]);
const REMOTE_URL = /(^|[\s,("'])(?:https?:)?\/\//i;
const REMOTE_CSS_URL = /url\(\s*(['"]?)\s*(?:https?:)?\/\/[^)]*\)/gi;
const REMOTE_CSS_IMPORT = /@import\s+(?:url\()?\s*['"]?\s*(?:https?:)?\/\/[^;]*;?/gi;

/**
 * The mail's HTML with every way of loading remote content taken out, parsed in an
 * inert document (DOMParser: no browsing context, so nothing loads or runs there).
 * The frame's own CSP blocks the same things; this is the second lock, and it does not
 * depend on the browser's preload scanner honouring a <meta> policy in time.
 * Returns [html, how many remote references were removed].
 */
export function withoutRemoteContent(html, keepRemote) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  let removed = 0;
  // A mail's <base> would re-root its relative URLs elsewhere; a refresh would navigate.
  for (const element of doc.querySelectorAll("base, meta[http-equiv]")) element.remove();
  if (keepRemote) return [serialize(doc), 0];
  for (const element of doc.querySelectorAll("*")) {
    for (const attribute of [...element.attributes]) {
      const name = attribute.name.toLowerCase();
      const loads = LOADING_ATTRIBUTES.has(name) || (name === "href" && !["a", "area"].includes(element.localName));
      if (loads && REMOTE_URL.test(attribute.value)) {
        element.removeAttribute(attribute.name);
        removed += 1;
      } else if (name === "style" && REMOTE_CSS_URL.test(attribute.value)) {
        element.setAttribute("style", attribute.value.replace(REMOTE_CSS_URL, "none"));
        removed += 1;
      }
      REMOTE_CSS_URL.lastIndex = 0;
    }
  }
  for (const style of doc.querySelectorAll("style")) {
    const css = style.textContent;
    const cleaned = css.replace(REMOTE_CSS_IMPORT, "").replace(REMOTE_CSS_URL, "none");
    if (cleaned !== css) {
      style.textContent = cleaned;
      removed += 1;
    }
  }
  return [serialize(doc), removed];
}

function serialize(doc) {
  // The inert document's markup (read, never assigned): it goes to the sandboxed frame only.
  const head = doc.head ? doc.head.innerHTML : "";
  return `${head ? `<head>${head}</head>` : ""}<body>${doc.body ? doc.body.innerHTML : ""}</body>`;
}

/** The document the frame shows: our CSP and base first, then the mail's HTML. */
export function frameDocument(html, remoteImages) {
  const images = remoteImages ? `${location.origin} data: http: https:` : `${location.origin} data:`;
  const policy = `default-src 'none'; style-src 'unsafe-inline'; img-src ${images}; font-src data:; form-action 'none'`;
  return (
    '<!doctype html><html><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${policy}">` +
    '<meta name="referrer" content="no-referrer"><base target="_blank"></head><body>' +
    html
  );
}

/** The SMTP envelope: MAIL FROM and RCPT TO from the message's ``Envelope`` (the API's
 * extra key) or its Return-Path/Delivered-To headers; the client, AUTH user and TLS
 * from the Received header our SMTP server writes (RFC 3848 "with" types, and
 * Postfix's "(Authenticated sender: ...)" comment). */
export function envelopeOf(message, headers) {
  const first = (name) => (headers[name] || [])[0] || "";
  const received = first("Received").replace(/\s+/g, " ");
  const ours = / \(refservers\) /.test(received);
  const withType = (received.match(/ with (\S+)/) || [])[1] || "";
  return {
    mailFrom: message.Envelope?.From ?? first("Return-Path").replace(/^<|>$/g, ""),
    rcptTo: message.Envelope?.To ?? headers["Delivered-To"] ?? [],
    client: ours ? (received.match(/^from (\S+) \(\[([^\]]*)\]\)/) || []).slice(1).reverse().join(" helo=") : "",
    authUser: ours ? (received.match(/\(Authenticated sender: ([^)]*)\)/) || [])[1] || "" : "",
    tls: ours ? (/ESMTPS/.test(withType) ? `yes (${withType})` : `no (${withType || "SMTP"})`) : "",
  };
}

export function mount(container, params, rest) {
  const id = rest[0] || "";
  let stopped = false;
  let message = null;
  let headers = {};
  let remoteImages = false;
  const panels = {};
  const tabButtons = {};

  const heading = h("h1", { class: "subject" }, "Loading…");
  const summary = h("dl", { class: "summary" });
  const envelope = h("dl", { class: "envelope" });
  const hints = h("ul", { class: "hints" });
  const tabList = h("div", { role: "tablist", "aria-label": "Message views" });
  for (const name of TABS) {
    const button = h(
      "button",
      { type: "button", role: "tab", id: `tab-${name}`, "aria-controls": `panel-${name}`, "aria-selected": "false", tabindex: "-1" },
      name,
    );
    button.addEventListener("click", () => show(name));
    tabButtons[name] = button;
    tabList.append(button);
    panels[name] = h("div", { role: "tabpanel", id: `panel-${name}`, "aria-labelledby": `tab-${name}`, hidden: true, class: "panel" });
  }
  tabList.addEventListener("keydown", (event) => {
    const index = TABS.findIndex((name) => tabButtons[name].getAttribute("aria-selected") === "true");
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) {
      const name = TABS[(index + step + TABS.length) % TABS.length];
      show(name);
      tabButtons[name].focus();
    }
  });

  const actions = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Message" },
    h("a", { href: "#/inbox", class: "button" }, "← Back"),
    h("button", { type: "button", onclick: () => markUnread() }, "Mark unread"),
    h("a", { class: "button", href: `/api/v1/message/${encodeURIComponent(id)}/raw`, download: `${id}.eml` }, "Download .eml"),
    h("button", { type: "button", class: "danger", onclick: () => remove() }, "Delete"),
  );

  container.append(
    h(
      "article",
      { class: "message", "aria-labelledby": "message-subject" },
      actions,
      heading,
      summary,
      h(
        "div",
        { class: "columns" },
        h("section", { "aria-label": "SMTP envelope" }, h("h2", {}, "SMTP envelope"), envelope),
        h("section", { "aria-label": "Read it over IMAP and POP3" }, h("h2", {}, "Over the protocols"), hints),
      ),
      tabList,
      Object.values(panels),
    ),
  );
  heading.id = "message-subject";

  function show(name) {
    for (const tab of TABS) {
      const selected = tab === name;
      tabButtons[tab].setAttribute("aria-selected", String(selected));
      tabButtons[tab].tabIndex = selected ? 0 : -1;
      panels[tab].hidden = !selected;
    }
    if (name === "Raw") loadRaw();
  }

  async function load() {
    try {
      [message, headers] = await Promise.all([
        api(`/api/v1/message/${encodeURIComponent(id)}`),
        api(`/api/v1/message/${encodeURIComponent(id)}/headers`),
      ]);
    } catch (error) {
      heading.textContent = error.status === 404 ? "No such message" : "Could not load the message";
      announce(error.message, true);
      return;
    }
    if (stopped) return;
    if (!message.Read) {
      // Mailpit marks a message read when its API is asked for it; say so to be sure.
      api("/api/v1/messages", { method: "PUT", json: { IDs: [id], Read: true } }).catch(() => {});
    }
    render();
    renderHints();
  }

  function render() {
    heading.textContent = message.Subject || "(no subject)";
    document.title = `${message.Subject || "(no subject)"} · refservers`;
    const fields = [
      ["From", formatAddress(message.From)],
      ["To", formatAddress(message.To)],
      ["Cc", formatAddress(message.Cc)],
      ["Bcc", formatAddress(message.Bcc)],
      ["Reply-To", formatAddress(message.ReplyTo)],
      ["Date", formatDate(message.Date)],
      ["Size", formatSize(message.Size)],
    ];
    fill(summary, fields.filter(([, value]) => value).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));

    const smtp = envelopeOf(message, headers);
    const rows = [
      ["MAIL FROM", smtp.mailFrom || "<>"],
      ["RCPT TO", smtp.rcptTo.join(", ")],
      ["Client", smtp.client],
      ["AUTH user", smtp.authUser || (smtp.client ? "(none)" : "")],
      ["TLS", smtp.tls],
    ];
    fill(envelope, rows.filter(([, value]) => value).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));

    renderHtml();
    fill(panels.Text, message.Text ? h("pre", { class: "text" }, message.Text) : h("p", { class: "empty" }, "This message has no text part."));
    renderHeaders();
    renderAttachments();
    show(message.HTML ? "HTML" : "Text");
  }

  function renderHtml() {
    if (!message.HTML) {
      fill(panels.HTML, h("p", { class: "empty" }, "This message has no HTML part."));
      return;
    }
    let html = message.HTML;
    for (const part of [...(message.Inline || []), ...(message.Attachments || [])]) {
      if (part.ContentID) html = html.split(`cid:${part.ContentID}`).join(partUrl(id, part.PartID));
    }
    const frame = h("iframe", {
      title: "Message HTML",
      sandbox: "allow-popups allow-popups-to-escape-sandbox",
      referrerpolicy: "no-referrer",
      class: "html",
    });
    const [shown, blocked] = withoutRemoteContent(html, remoteImages);
    frame.srcdoc = frameDocument(shown, remoteImages);
    const load = h(
      "button",
      { type: "button", disabled: remoteImages || !blocked },
      remoteImages ? "Remote images loaded" : "Load remote images",
    );
    let note = "Scripts never run here.";
    if (!remoteImages && blocked) {
      note = `Scripts never run here; ${blocked} remote reference${blocked === 1 ? " is" : "s are"} blocked until you load them.`;
    }
    load.addEventListener("click", () => {
      remoteImages = true;
      renderHtml();
    });
    fill(panels.HTML, h("div", { class: "toolbar" }, load, h("span", { class: "hint" }, note)), frame);
  }

  function renderHeaders() {
    const names = Object.keys(headers).sort((a, b) => a.localeCompare(b));
    fill(
      panels.Headers,
      h(
        "table",
        { class: "headers", "aria-label": "Headers" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"))),
        h("tbody", {}, names.flatMap((name) => headers[name].map((value) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value))))),
      ),
    );
  }

  function renderAttachments() {
    const parts = [...(message.Attachments || []), ...(message.Inline || [])];
    if (parts.length === 0) {
      fill(panels.Attachments, h("p", { class: "empty" }, "No attachments."));
      tabButtons.Attachments.textContent = "Attachments";
      return;
    }
    tabButtons.Attachments.textContent = `Attachments (${parts.length})`;
    fill(
      panels.Attachments,
      h(
        "ul",
        { class: "attachments" },
        parts.map((part) => {
          const url = partUrl(id, part.PartID);
          const name = part.FileName || `part-${part.PartID}`;
          // Only raster images are previewed; an <img> never runs script, but SVG and
          // HTML are offered as downloads only (the download attribute keeps them off
          // this origin as documents).
          const preview = /^image\/(png|jpe?g|gif|webp|bmp)$/i.test(part.ContentType || "")
            ? h("img", { src: url, alt: `Preview of ${name}`, class: "preview", loading: "lazy" })
            : null;
          return h(
            "li",
            {},
            preview,
            h("span", { class: "name" }, name),
            h("span", { class: "type" }, part.ContentType || ""),
            h("span", { class: "size" }, formatSize(part.Size)),
            h("a", { href: url, download: name, class: "button", "aria-label": `Download ${name}` }, "Download"),
          );
        }),
      ),
    );
  }

  let rawLoaded = false;
  async function loadRaw() {
    if (rawLoaded) return;
    rawLoaded = true;
    fill(panels.Raw, h("p", {}, "Loading…"));
    try {
      const raw = await api(`/api/v1/message/${encodeURIComponent(id)}/raw`, { as: "text" });
      fill(
        panels.Raw,
        h("div", { class: "toolbar" }, copyButton(raw, "Copy source")),
        h("pre", { class: "raw", "aria-label": "Raw source" }, raw),
      );
    } catch (error) {
      rawLoaded = false;
      fill(panels.Raw, h("p", { class: "error" }, error.message));
    }
  }

  async function renderHints() {
    let body;
    try {
      body = await health();
    } catch {
      return;
    }
    if (stopped) return;
    const recipient = (headers["Delivered-To"] || [])[0] || (message.To?.[0]?.Address ?? "");
    const user = message.Users?.[0] || recipient.split("@")[0] || "USER";
    const items = [];
    for (const [name, scheme, path] of [
      ["imap", "imap", "/INBOX"],
      ["pop3", "pop3", ""],
    ]) {
      const server = serverNamed(body, name);
      const port = server?.listeners?.main;
      if (!server || !port) continue;
      const host = server.host.includes(":") ? `[${server.host}]` : server.host;
      const url = `${scheme}://${encodeURIComponent(user)}@${host}:${port}${path}`;
      items.push(h("li", {}, h("code", {}, url), " ", copyButton(url)));
    }
    if (items.length) items.push(h("li", { class: "hint" }, `Log in as ${user} with that user's password.`));
    fill(hints, items.length ? items : h("li", { class: "hint" }, "Start imap or pop3 to read this message over them."));
  }

  async function markUnread() {
    try {
      await api("/api/v1/messages", { method: "PUT", json: { IDs: [id], Read: false } });
      announce("Marked unread");
    } catch (error) {
      announce(`Mark unread: ${error.message}`, true);
    }
  }

  async function remove() {
    if (!confirmAction("Delete this message?")) return;
    try {
      await api("/api/v1/messages", { method: "DELETE", json: { IDs: [id] } });
      announce("Message deleted");
      location.hash = "#/inbox";
    } catch (error) {
      announce(`Delete: ${error.message}`, true);
    }
  }

  function onKey(event) {
    if (event.target.closest("input, textarea, select")) return;
    if (event.key === "Delete") remove();
    else if (event.key === "Escape" || event.key === "u") location.hash = "#/inbox";
  }
  document.addEventListener("keydown", onKey);
  const unsubscribe = onMailEvent((event) => {
    if (event.Type === "delete" && event.Data?.ID === id) {
      announce("This message was deleted");
      heading.textContent = "This message was deleted";
    }
  });
  load();
  return () => {
    stopped = true;
    unsubscribe();
    document.removeEventListener("keydown", onKey);
  };
}
