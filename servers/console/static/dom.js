// DOM helpers. Rule: text from the API (mail subjects, addresses, file names, header
// values, protocol lines) only ever becomes a Text node or an attribute value; there is
// no innerHTML anywhere in the console.

/** h("a", {href: "#/x", onclick: fn}, "text", child...) -> a new element. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of ``element`` with ``children``. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function formatSize(bytes) {
  if (bytes === undefined || bytes === null) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A Date, an RFC 3339 string or epoch seconds -> a short local date and time. */
export function formatDate(value) {
  if (value === undefined || value === null || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const today = new Date();
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString()} ${time}`;
}

/** "Name <address>" for Mailpit's {Name, Address} objects (or lists of them). */
export function formatAddress(address) {
  if (!address) return "";
  if (Array.isArray(address)) return address.map(formatAddress).join(", ");
  if (typeof address === "string") return address;
  return address.Name ? `${address.Name} <${address.Address}>` : address.Address || "";
}

/** A button that copies ``text`` to the clipboard, with a status announcement. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "copy", title: `Copy: ${text}` }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      announce("Copied to the clipboard");
    } catch {
      // Clipboard access needs a secure context or a permission; select instead.
      const field = h("textarea", { class: "offscreen", "aria-hidden": "true" });
      field.value = text;
      document.body.append(field);
      field.select();
      document.execCommand("copy");
      field.remove();
      announce("Copied");
    }
  });
  return button;
}

/** Say something in the page's status region (polite live region). */
export function announce(text, isError = false) {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = text;
  status.classList.toggle("error", isError);
}

/** confirm() wrapped, so every destructive action asks the same way. */
export function confirmAction(question) {
  return window.confirm(question);
}
