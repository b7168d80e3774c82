// The inbox: mailboxes with unread counts, the message list (newest first, 50 a page),
// search in Mailpit's syntax, mark read/unread, delete. Live over /api/events; while
// the socket is down the list is re-read every second instead.

import { api, query } from "./api.js";
import { announce, confirmAction, fill, formatAddress, formatDate, formatSize, h } from "./dom.js";
import { mailEventsConnected, onMailEvent } from "./events.js";

export const PAGE_SIZE = 50;
const LIVE_TYPES = new Set(["new", "update", "delete", "truncate", "prune"]);

function inboxHash({ user, q, page }) {
  return `#/inbox${query({ user, q, page: page > 1 ? page : "" })}`;
}

/** ``task`` wrapped so that calls during a run make one more run afterwards, not more. */
function oneAtATime(task) {
  let running = null;
  let again = false;
  const run = () => {
    if (running) {
      again = true;
      return running;
    }
    running = task().finally(() => {
      running = null;
      if (again) {
        again = false;
        run();
      }
    });
    return running;
  };
  return run;
}

export function mount(container, params) {
  const state = {
    user: params.get("user") || "",
    q: params.get("q") || "",
    page: Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1),
    messages: [],
    cursor: -1,
    total: 0,
  };
  let stopped = false;
  let refreshTimer = null;

  const mailboxes = h("ul", { class: "mailboxes" });
  const searchField = h("input", {
    type: "search",
    name: "q",
    "aria-label": "Search",
    placeholder: "from: to: subject: is:unread has:attachment words",
    value: state.q,
  });
  const searchForm = h(
    "form",
    { role: "search", class: "search" },
    searchField,
    h("button", { type: "submit" }, "Search"),
  );
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = inboxHash({ user: state.user, q: searchField.value.trim(), page: 1 });
  });

  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all" });
  selectAll.addEventListener("change", () => {
    for (const box of rows.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
  });
  const rows = h("tbody");
  const pager = h("span", { class: "pager" });
  const previous = h("button", { type: "button", "aria-label": "Previous page", onclick: () => turn(-1) }, "‹");
  const next = h("button", { type: "button", "aria-label": "Next page", onclick: () => turn(1) }, "›");
  const toolbar = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Messages" },
    h("button", { type: "button", onclick: () => markRead(true) }, "Mark read"),
    h("button", { type: "button", onclick: () => markRead(false) }, "Mark unread"),
    h("button", { type: "button", class: "danger", onclick: () => deleteSelected() }, "Delete"),
    h("button", { type: "button", class: "danger", onclick: () => deleteAll() }, "Delete all"),
    h("span", { class: "spacer" }),
    pager,
    previous,
    next,
  );
  const table = h(
    "table",
    { class: "messages", "aria-label": "Messages" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", class: "pick" }, selectAll),
        h("th", { scope: "col", class: "from" }, "From"),
        h("th", { scope: "col", class: "to" }, "To"),
        h("th", { scope: "col" }, "Subject"),
        h("th", { scope: "col", class: "date" }, "Date"),
        h("th", { scope: "col", class: "size" }, "Size"),
      ),
    ),
    rows,
  );
  const empty = h("p", { class: "empty", hidden: true });
  container.append(
    h(
      "div",
      { class: "inbox" },
      h("aside", { "aria-label": "Mailboxes" }, h("h2", {}, "Mailboxes"), mailboxes),
      h("section", { class: "list", "aria-label": "Message list" }, searchForm, toolbar, table, empty),
    ),
  );

  // One list request at a time (and one round of mailbox counts): with a slow store,
  // polls and events would pile up; a change seen meanwhile asks for one more read.
  const load = oneAtATime(readList);
  const loadMailboxes = oneAtATime(readMailboxes);

  async function readList() {
    const start = (state.page - 1) * PAGE_SIZE;
    const parameters = { start, limit: PAGE_SIZE, user: state.user };
    try {
      const body = state.q
        ? await api(`/api/v1/search${query({ query: state.q, ...parameters })}`)
        : await api(`/api/v1/messages${query(parameters)}`);
      if (stopped) return;
      state.messages = body.messages || [];
      state.total = body.messages_count ?? body.total ?? state.messages.length;
      // messages_unread counts what the filter (user) kept; unread is the whole store's
      state.unread = state.q ? undefined : (body.messages_unread ?? body.unread);
      render();
    } catch (error) {
      if (!stopped) announce(`Messages: ${error.message}`, true);
    }
  }

  function render() {
    const keep = state.messages[state.cursor]?.ID;
    const checked = new Set([...rows.querySelectorAll("input:checked")].map((box) => box.value));
    rows.replaceChildren(...state.messages.map((message, index) => row(message, index, checked.has(message.ID))));
    const found = state.messages.findIndex((message) => message.ID === keep);
    state.cursor = found >= 0 ? found : Math.max(0, Math.min(state.cursor, state.messages.length - 1));
    highlight(false);
    const first = state.total ? (state.page - 1) * PAGE_SIZE + 1 : 0;
    const last = (state.page - 1) * PAGE_SIZE + state.messages.length;
    pager.textContent = `${first}–${last} of ${state.total}`;
    previous.disabled = state.page <= 1;
    next.disabled = last >= state.total;
    empty.hidden = state.messages.length > 0;
    empty.textContent = state.q ? "No message matches this search." : "No messages yet. Send one over SMTP.";
  }

  function row(message, index, isChecked) {
    const box = h("input", {
      type: "checkbox",
      value: message.ID,
      checked: isChecked,
      "aria-label": `Select ${message.Subject || "(no subject)"}`,
    });
    const subject = h(
      "a",
      { href: `#/message/${encodeURIComponent(message.ID)}` },
      message.Subject || "(no subject)",
    );
    const marks = [];
    if (!message.Read) marks.push(h("span", { class: "unread-dot", title: "unread" }, "●", h("span", { class: "offscreen" }, " unread")));
    if (message.Attachments) {
      marks.push(h("span", { class: "clip", title: `${message.Attachments} attachment(s)` }, h("span", { class: "offscreen" }, "has attachments")));
    }
    const tr = h(
      "tr",
      { class: message.Read ? "read" : "unread", dataset: { id: message.ID } },
      h("td", { class: "pick" }, box),
      h("td", { class: "from" }, formatAddress(message.From)),
      h("td", { class: "to" }, formatAddress(message.To)),
      h("td", { class: "subject" }, marks, subject, message.Snippet ? h("span", { class: "snippet" }, ` ${message.Snippet}`) : null),
      h("td", { class: "date" }, h("time", { datetime: message.Created }, formatDate(message.Created))),
      h("td", { class: "size" }, formatSize(message.Size)),
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, input")) return;
      state.cursor = index;
      highlight(true);
    });
    tr.addEventListener("dblclick", () => open(index));
    return tr;
  }

  function highlight(focus) {
    [...rows.children].forEach((tr, index) => {
      tr.classList.toggle("cursor", index === state.cursor);
      if (index === state.cursor) tr.setAttribute("aria-current", "true");
      else tr.removeAttribute("aria-current");
    });
    const current = rows.children[state.cursor];
    if (focus && current) {
      current.querySelector("a").focus({ preventScroll: true });
      current.scrollIntoView({ block: "nearest" });
    }
  }

  function open(index) {
    const message = state.messages[index];
    if (message) location.hash = `#/message/${encodeURIComponent(message.ID)}`;
  }

  function selectedIds() {
    const ids = [...rows.querySelectorAll("input:checked")].map((box) => box.value);
    if (ids.length === 0 && state.messages[state.cursor]) ids.push(state.messages[state.cursor].ID);
    return ids;
  }

  async function markRead(read) {
    const ids = selectedIds();
    if (ids.length === 0) return announce("Select messages first");
    try {
      await api("/api/v1/messages", { method: "PUT", json: { IDs: ids, Read: read } });
      announce(`${ids.length} marked ${read ? "read" : "unread"}`);
      refresh();
    } catch (error) {
      announce(`Mark: ${error.message}`, true);
    }
  }

  async function deleteSelected() {
    const ids = selectedIds();
    if (ids.length === 0) return announce("Select messages first");
    if (!confirmAction(`Delete ${ids.length} message${ids.length > 1 ? "s" : ""}?`)) return;
    try {
      await api("/api/v1/messages", { method: "DELETE", json: { IDs: ids } });
      selectAll.checked = false;
      announce(`${ids.length} deleted`);
      refresh();
    } catch (error) {
      announce(`Delete: ${error.message}`, true);
    }
  }

  async function deleteAll() {
    const what = state.user ? `every message of ${state.user}` : "every message of every mailbox";
    if (!confirmAction(`Delete ${what}?`)) return;
    try {
      if (state.user) {
        const ids = await allIds();
        if (ids.length) await api("/api/v1/messages", { method: "DELETE", json: { IDs: ids } });
      } else {
        await api("/api/v1/messages", { method: "DELETE" });
      }
      announce("All deleted");
      refresh();
    } catch (error) {
      announce(`Delete all: ${error.message}`, true);
    }
  }

  async function allIds() {
    const body = await api(`/api/v1/messages${query({ user: state.user, start: 0, limit: 100000 })}`);
    return (body.messages || []).map((message) => message.ID);
  }

  function turn(step) {
    location.hash = inboxHash({ user: state.user, q: state.q, page: state.page + step });
  }

  async function readMailboxes() {
    // users of the user table, and mailboxes made for addresses nobody created as users
    const [users, boxes] = await Promise.all([
      api("/api/v1/users").then((body) => body.users || [], () => []),
      api("/api/v1/mailboxes").then((body) => body.mailboxes || [], () => []),
    ]);
    const names = [...new Set([...users.map((user) => user.name), ...boxes.map((box) => box.name)])].sort();
    const entries = [{ name: "", label: "All mail" }, ...names.map((name) => ({ name, label: name }))];
    const counts = await Promise.all(
      entries.map((entry) =>
        // the list already read says how many are unread in the mailbox it shows
        (entry.name === state.user && state.unread !== undefined
          ? Promise.resolve({ unread: state.unread })
          : api(`/api/v1/messages${query({ user: entry.name, start: 0, limit: 1 })}`)
        ).then(
          (body) => body.messages_unread ?? body.unread,
          () => undefined,
        ),
      ),
    );
    if (stopped) return;
    fill(
      mailboxes,
      entries.map((entry, index) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href: inboxHash({ user: entry.name, q: state.q, page: 1 }),
              "aria-current": entry.name === state.user ? "page" : null,
            },
            entry.label,
            counts[index] ? h("span", { class: "count", title: "unread" }, ` ${counts[index]}`) : null,
          ),
        ),
      ),
    );
  }

  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      load();
      loadMailboxes();
    }, 60);
  }

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "j" || event.key === "ArrowDown") {
      state.cursor = Math.min(state.cursor + 1, state.messages.length - 1);
      highlight(true);
    } else if (event.key === "k" || event.key === "ArrowUp") {
      state.cursor = Math.max(state.cursor - 1, 0);
      highlight(true);
    } else if (event.key === "Enter" && state.cursor >= 0) {
      open(state.cursor);
    } else if (event.key === "Delete" && state.cursor >= 0) {
      deleteSelected();
    } else if (event.key === "/") {
      searchField.focus();
    } else {
      return;
    }
    event.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  let socketWasDown = false;
  const unsubscribe = onMailEvent((event) => {
    if (event.Type === "disconnected") socketWasDown = true;
    // after a reconnection, catch up on what the socket missed; the first connection
    // needs nothing (the page has just read the list)
    const caughtUp = event.Type === "connected" && socketWasDown;
    if (LIVE_TYPES.has(event.Type) || caughtUp) refresh();
  });
  const poll = setInterval(() => {
    if (!mailEventsConnected()) load();
  }, 1000);
  // The list first: the mailbox counts are one request each and would compete with it.
  load().finally(() => {
    if (!stopped) loadMailboxes();
  });

  return () => {
    stopped = true;
    clearTimeout(refreshTimer);
    clearInterval(poll);
    unsubscribe();
    document.removeEventListener("keydown", onKey);
  };
}
