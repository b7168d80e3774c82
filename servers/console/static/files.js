// Files: each user's home of the shared file root (what FTP and SFTP serve), as a tree
// with sizes and modification times; download, upload (a file picker, or drag and drop
// anywhere on the view), delete, new folder; and each file's recent transfers, from the
// journal's "file" events (which protocol, which user, which way).

import { api, query } from "./api.js";
import { announce, confirmAction, fill, formatDate, formatSize, h } from "./dom.js";

function fileUrl(user, path) {
  const segments = path.split("/").filter(Boolean).map(encodeURIComponent);
  return `/api/v1/files/${encodeURIComponent(user)}/${segments.join("/")}`;
}

function join(folder, name) {
  return `${folder.replace(/\/$/, "")}/${name}`;
}

/** Flat API entries ({path, type, size, mtime}) -> nested {name, entry, children}. */
export function buildTree(entries) {
  const root = { name: "", path: "/", entry: { type: "dir" }, children: new Map() };
  for (const entry of entries) {
    const parts = entry.path.split("/").filter(Boolean);
    let node = root;
    parts.forEach((part, index) => {
      if (!node.children.has(part)) {
        const path = `/${parts.slice(0, index + 1).join("/")}`;
        node.children.set(part, { name: part, path, entry: { type: "dir" }, children: new Map() });
      }
      node = node.children.get(part);
    });
    node.entry = entry;
  }
  return root;
}

export function mount(container, params) {
  let user = params.get("user") || "";
  let target = params.get("path") || "/";
  let stopped = false;

  const userSelect = h("select", { name: "user", "aria-label": "User" });
  const folderSelect = h("select", { name: "folder", "aria-label": "Upload to folder" });
  const picker = h("input", { type: "file", multiple: true, "aria-label": "Upload files", class: "offscreen" });
  const pickerLabel = h("button", { type: "button", onclick: () => picker.click() }, "Upload files");
  const mkdirButton = h("button", { type: "button", onclick: () => makeFolder() }, "New folder");
  const tree = h("div", { class: "tree", role: "region", "aria-label": "File tree" });
  const drop = h(
    "section",
    { class: "files", "aria-label": "Files" },
    h(
      "div",
      { class: "toolbar" },
      userSelect,
      h("label", {}, "Folder ", folderSelect),
      pickerLabel,
      picker,
      mkdirButton,
      h("span", { class: "hint" }, "or drop files anywhere here"),
    ),
    tree,
  );
  container.append(drop);

  async function loadUsers() {
    try {
      const body = await api("/api/v1/files");
      const names = Object.keys(body.users || {}).sort();
      if (!user || !names.includes(user)) user = user && !names.length ? user : names[0] || "";
      fill(userSelect, names.map((name) => h("option", { value: name, selected: name === user }, name)));
      if (!names.length) {
        fill(tree, h("p", { class: "empty" }, "No file server is running (start ftp or sftp)."));
        return;
      }
      await load();
    } catch (error) {
      fill(tree, h("p", { class: "empty" }, `Files: ${error.message}`));
    }
  }

  async function load() {
    const [listing, journal] = await Promise.all([
      api(`/api/v1/files${query({ user })}`),
      api(`/api/v1/events${query({ kind: "file", limit: 1000 })}`).catch(() => ({ events: [] })),
    ]);
    if (stopped) return;
    const transfers = new Map(); // path -> newest-first transfers of this user's file
    for (const event of (journal.events || []).slice().reverse()) {
      const d = event.details || {};
      if (d.user !== user || !d.path) continue;
      if (!transfers.has(d.path)) transfers.set(d.path, []);
      if (transfers.get(d.path).length < 3) transfers.get(d.path).push(event);
    }
    const root = buildTree(listing.files || []);
    const folders = ["/", ...(listing.files || []).filter((entry) => entry.type === "dir").map((entry) => entry.path)];
    if (!folders.includes(target)) target = "/";
    fill(folderSelect, folders.map((folder) => h("option", { value: folder, selected: folder === target }, folder)));
    fill(
      tree,
      h("ul", { class: "tree-root" }, node(root, transfers, true)),
      (listing.files || []).length ? null : h("p", { class: "empty" }, `${user}'s home is empty. Upload a file, or put one over FTP or SFTP.`),
    );
  }

  function node(item, transfers, isRoot = false) {
    if (item.entry.type === "dir") {
      const children = [...item.children.values()].sort(
        (a, b) => (a.entry.type === "dir" ? 0 : 1) - (b.entry.type === "dir" ? 0 : 1) || a.name.localeCompare(b.name),
      );
      const label = isRoot ? `${user} /` : `${item.name}/`;
      const summary = h(
        "summary",
        {},
        h("span", { class: "name folder" }, label),
        h("span", { class: "mtime" }, item.entry.mtime ? formatDate(item.entry.mtime) : ""),
        isRoot ? null : h("button", { type: "button", class: "danger small", "aria-label": `Delete ${item.path}`, onclick: (event) => remove(event, item.path) }, "Delete"),
      );
      summary.addEventListener("click", () => {
        target = item.path;
        folderSelect.value = target;
      });
      return h("li", { class: "dir" }, h("details", { open: true }, summary, h("ul", {}, children.map((child) => node(child, transfers)))));
    }
    const recent = transfers.get(item.path) || [];
    return h(
      "li",
      { class: "file" },
      h("span", { class: "name" }, item.name, item.entry.type === "link" ? " →" : ""),
      h("span", { class: "size" }, formatSize(item.entry.size)),
      h("span", { class: "mtime" }, formatDate(item.entry.mtime)),
      h("a", { class: "button small", href: fileUrl(user, item.path), download: item.name, "aria-label": `Download ${item.path}` }, "Download"),
      h("button", { type: "button", class: "danger small", "aria-label": `Delete ${item.path}`, onclick: (event) => remove(event, item.path) }, "Delete"),
      recent.length
        ? h(
            "ul",
            { class: "transfers", "aria-label": `Recent transfers of ${item.path}` },
            recent.map((event) =>
              h(
                "li",
                {},
                `${event.server} ${event.details.direction || ""} by ${event.details.user} at ${formatDate(event.time)}`,
                event.details.complete === false ? " (incomplete)" : "",
              ),
            ),
          )
        : null,
    );
  }

  async function upload(fileList) {
    const chosen = [...fileList];
    if (!chosen.length || !user) return;
    let done = 0;
    for (const file of chosen) {
      try {
        await api(fileUrl(user, join(folderSelect.value || target, file.name)), { method: "PUT", body: file });
        done += 1;
      } catch (error) {
        announce(`Upload of ${file.name}: ${error.message}`, true);
      }
    }
    if (done) announce(`Uploaded ${done} file${done > 1 ? "s" : ""} to ${user}:${folderSelect.value || target}`);
    await load();
  }

  async function makeFolder() {
    const name = window.prompt(`New folder in ${folderSelect.value || target}`);
    if (!name) return;
    try {
      const path = join(folderSelect.value || target, name.trim());
      await api(fileUrl(user, path), { method: "POST" });
      target = path;
      announce(`Created ${path}`);
      await load();
    } catch (error) {
      announce(`New folder: ${error.message}`, true);
    }
  }

  async function remove(event, path) {
    event.preventDefault();
    event.stopPropagation();
    if (!confirmAction(`Delete ${user}:${path}?`)) return;
    try {
      await api(fileUrl(user, path), { method: "DELETE" });
      announce(`Deleted ${path}`);
      await load();
    } catch (error) {
      announce(`Delete: ${error.message}`, true);
    }
  }

  userSelect.addEventListener("change", () => {
    user = userSelect.value;
    target = "/";
    history.replaceState(null, "", `#/files${query({ user })}`);
    load();
  });
  folderSelect.addEventListener("change", () => {
    target = folderSelect.value;
  });
  picker.addEventListener("change", () => {
    upload(picker.files).finally(() => {
      picker.value = "";
    });
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("dropping");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dropping"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dropping");
    upload(event.dataTransfer.files);
  });

  loadUsers();
  return () => {
    stopped = true;
  };
}
