// Faults and toxics: the fault rules of every server (GET/POST/DELETE /api/v1/faults)
// and the proxy's TCP listeners (/api/v1/proxies); toxics are fault rules of the proxy
// server. The add form is generated from the action and parameter schema the API
// publishes (GET /api/v1/faults/actions: {rule_fields, servers: {name: {subject, user,
// actions: {action: {help, params}}}}}); an error of the API is shown next to the
// field it names. Without a schema endpoint the form falls back to a free action name
// and a JSON object of params.

import { api, health } from "./api.js";
import { announce, confirmAction, fill, h } from "./dom.js";

const NUMERIC = new Set(["number", "integer"]);

/** "rule 0: params.seconds: expected ..." -> "params.seconds" (or "match", "probability"...) */
export function fieldOfError(message) {
  const found = String(message).replace(/^rule \d+: /, "").match(/^([\w.]+):/);
  return found ? found[1] : "";
}

function describeRule(rule) {
  const params = Object.entries(rule.params || {})
    .map(([name, value]) => `${name}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" ");
  const chance = rule.probability < 1 ? ` ${Math.round(rule.probability * 100)}%` : "";
  const times = rule.times !== null && rule.times !== undefined ? ` ×${rule.times}` : "";
  return `${params}${chance}${times}`;
}

export function mount(container) {
  let stopped = false;
  let schema = null; // server -> {subject, user, actions: {action: {help, params}}}
  let fieldHelp = {}; // rule field -> what it means (the schema's rule_fields)
  const rulesBody = h("tbody");
  const proxiesBody = h("tbody");
  const ruleForm = h("form", { class: "rule-form", "aria-label": "Add a fault rule" });
  const proxyForm = h("form", { class: "proxy-form", "aria-label": "Add a TCP proxy" });

  container.append(
    h(
      "div",
      { class: "faults" },
      h(
        "section",
        { "aria-labelledby": "rules-title" },
        h("h2", { id: "rules-title" }, "Fault rules and toxics"),
        h(
          "table",
          { "aria-label": "Fault rules" },
          h(
            "thead",
            {},
            h("tr", {}, ["Id", "Server", "Match", "Action", "Parameters", "Fired", ""].map((name) => h("th", { scope: "col" }, name))),
          ),
          rulesBody,
        ),
        h("div", { class: "toolbar" }, h("button", { type: "button", class: "danger", onclick: () => removeAllRules() }, "Remove all rules")),
        h("h3", {}, "Add a rule"),
        ruleForm,
      ),
      h(
        "section",
        { "aria-labelledby": "proxies-title" },
        h("h2", { id: "proxies-title" }, "TCP proxies"),
        h(
          "table",
          { "aria-label": "TCP proxies" },
          h("thead", {}, h("tr", {}, ["Name", "Listen", "Upstream", ""].map((name) => h("th", { scope: "col" }, name)))),
          proxiesBody,
        ),
        h("h3", {}, "Add a TCP proxy"),
        proxyForm,
        h("p", { class: "hint" }, "Toxics (latency, bandwidth, timeout, reset_peer, slicer, limit_data...) are rules of the proxy server: match the proxy's name or upstream."),
      ),
    ),
  );

  let shownRules = null; // the JSON last drawn: redraw only on a change, so a row under
  // the pointer is not replaced every two seconds
  async function loadRules() {
    try {
      const body = await api("/api/v1/faults");
      if (stopped) return;
      const rules = body.faults || [];
      const drawn = JSON.stringify(rules);
      if (drawn === shownRules) return;
      shownRules = drawn;
      fill(
        rulesBody,
        rules.length
          ? rules.map((rule) =>
              h(
                "tr",
                { dataset: { id: rule.id } },
                h("td", {}, rule.id),
                h("td", {}, rule.server),
                h("td", {}, h("code", {}, rule.match), rule.user ? ` user ${rule.user}` : ""),
                h("td", {}, rule.action),
                h("td", {}, describeRule(rule)),
                h("td", {}, String(rule.fired ?? 0)),
                h("td", {}, h("button", { type: "button", class: "danger small", "aria-label": `Remove rule ${rule.id}`, onclick: () => removeRule(rule.id) }, "Remove")),
              ),
            )
          : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No fault rules: every server behaves.")),
      );
    } catch (error) {
      announce(`Faults: ${error.message}`, true);
    }
  }

  async function loadProxies() {
    try {
      const body = await api("/api/v1/proxies");
      if (stopped) return;
      const proxies = body.proxies || [];
      fill(
        proxiesBody,
        proxies.length
          ? proxies.map((proxy) =>
              h(
                "tr",
                {},
                h("td", {}, proxy.name),
                h("td", {}, String(proxy.listen ?? proxy.port ?? "")),
                h("td", {}, proxy.upstream ?? ""),
                h("td", {}, h("button", { type: "button", class: "danger small", "aria-label": `Remove proxy ${proxy.name}`, onclick: () => removeProxy(proxy.name) }, "Remove")),
              ),
            )
          : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No TCP proxies.")),
      );
      buildProxyForm(true);
    } catch (error) {
      fill(proxiesBody, h("tr", {}, h("td", { colspan: 4, class: "empty" }, "The proxy server is not running.")));
      buildProxyForm(false);
    }
  }

  let fieldCount = 0;
  function field(label, control, name, hint = null) {
    // label[for], not a wrapping label: a wrapped select would take its options' text
    // into its accessible name
    fieldCount += 1;
    control.id = control.id || `fault-field-${fieldCount}`;
    return h(
      "div",
      { class: "field", dataset: { field: name } },
      h("label", { for: control.id }, label),
      control,
      hint,
      h("span", { class: "field-error", role: "alert" }),
    );
  }

  function paramControl(param) {
    const name = `params.${param.name}`;
    const common = { name, "aria-describedby": null };
    let control;
    if (param.choices) {
      control = h("select", common, param.required ? null : h("option", { value: "" }, "(default)"), param.choices.map((choice) => h("option", { value: choice, selected: choice === param.default }, choice)));
    } else if (param.type === "boolean") {
      control = h("input", { ...common, type: "checkbox", checked: param.default === true });
    } else if (NUMERIC.has(param.type)) {
      control = h("input", { ...common, type: "text", inputmode: "decimal", placeholder: param.default ?? "", required: param.required });
    } else if (param.type === "string table" || param.type === "json") {
      control = h("textarea", { ...common, rows: 2, placeholder: param.type === "json" ? "JSON" : '{"Name": "value"}' });
    } else {
      control = h("input", { ...common, type: "text", placeholder: param.default ?? "", required: param.required });
    }
    const title = `${param.name}${param.required ? " (required)" : ""}`;
    const wrapper = field(title, control, name);
    wrapper.append(h("span", { class: "hint" }, [param.expected, param.help].filter(Boolean).join(" · ")));
    return wrapper;
  }

  function readParam(param, control) {
    if (param.type === "boolean") return control.checked === (param.default === true) && !param.required ? undefined : control.checked;
    const text = control.value.trim();
    if (text === "") return undefined;
    if (NUMERIC.has(param.type)) {
      const number = Number(text);
      return Number.isNaN(number) ? text : number; // a bad number goes as typed: the API names it
    }
    if (param.type === "string table" || param.type === "json") {
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
    return text;
  }

  function buildRuleForm(serverNames) {
    // every server that takes rules (a rule may wait for its server), running ones first
    const running = new Set(serverNames);
    const servers = schema
      ? Object.keys(schema).sort((a, b) => Number(running.has(b)) - Number(running.has(a)) || a.localeCompare(b))
      : serverNames;
    const serverSelect = h("select", { name: "server" }, servers.map((name) => h("option", { value: name }, name)));
    const actionSelect = h("select", { name: "action" });
    const actionFree = h("input", { name: "action", type: "text", placeholder: "error, delay, disconnect…" });
    const paramsBox = h("div", { class: "params" });
    const paramsJson = h("textarea", { name: "params", rows: 2, placeholder: '{"seconds": 1}' });
    const matchField = h("input", { name: "match", type: "text", value: "*", "aria-describedby": "match-hint" });
    const userField = h("input", { name: "user", type: "text", placeholder: "any user" });
    const probability = h("input", { name: "probability", type: "text", inputmode: "decimal", value: "1" });
    const times = h("input", { name: "times", type: "text", inputmode: "numeric", placeholder: "unlimited" });
    const formError = h("p", { class: "field-error", role: "alert" });
    const matchHint = h(
      "p",
      { class: "hint", id: "match-hint" },
      fieldHelp.match || "A glob over what the server handles: an SMTP command line (MAIL FROM:*), an HTTP path (/api/*), a DNS name, a proxy target.",
    );
    const userHint = h("span", { class: "hint" });

    function actionsOf(server) {
      return schema?.[server]?.actions || {};
    }
    function renderActions() {
      const table = schema?.[serverSelect.value] || {};
      matchHint.textContent = table.subject ? `Matched against ${table.subject}.` : fieldHelp.match || matchHint.textContent;
      // a server without users refuses a user-scoped rule: no field to fill in wrongly
      userField.disabled = schema !== null && !table.user;
      userField.placeholder = userField.disabled ? "this server has no users" : "any user";
      userHint.textContent = table.user ? `The user is ${table.user}.` : "";
      const actions = actionsOf(serverSelect.value);
      fill(actionSelect, Object.keys(actions).map((name) => h("option", { value: name, title: actions[name].help || "" }, name)));
      renderParams();
    }
    function renderParams() {
      const action = actionsOf(serverSelect.value)[actionSelect.value];
      fill(paramsBox, action ? [action.help ? h("p", { class: "hint" }, action.help) : null, (action.params || []).map(paramControl)] : null);
    }
    serverSelect.addEventListener("change", renderActions);
    actionSelect.addEventListener("change", renderParams);

    fill(
      ruleForm,
      field("Server", serverSelect, "server"),
      field("Action", schema ? actionSelect : actionFree, "action"),
      field("Match", matchField, "match"),
      matchHint,
      field("User", userField, "user", userHint),
      schema ? paramsBox : field("Parameters (JSON)", paramsJson, "params"),
      field("Probability", probability, "probability"),
      field("Times", times, "times"),
      h("div", { class: "toolbar" }, h("button", { type: "submit" }, "Add rule")),
      formError,
    );
    if (schema) renderActions();

    ruleForm.onsubmit = async (event) => {
      event.preventDefault();
      for (const element of ruleForm.querySelectorAll(".field-error")) element.textContent = "";
      const spec = { server: serverSelect.value, action: schema ? actionSelect.value : actionFree.value.trim(), match: matchField.value || "*" };
      if (!userField.disabled && userField.value.trim()) spec.user = userField.value.trim();
      const chance = probability.value.trim();
      if (chance !== "" && chance !== "1") spec.probability = Number.isNaN(Number(chance)) ? chance : Number(chance);
      if (times.value.trim()) spec.times = Number.isNaN(Number(times.value)) ? times.value : Number(times.value);
      if (schema) {
        const params = {};
        for (const param of actionsOf(spec.server)[spec.action]?.params || []) {
          const value = readParam(param, ruleForm.elements[`params.${param.name}`]);
          if (value !== undefined) params[param.name] = value;
        }
        if (Object.keys(params).length) spec.params = params;
      } else if (paramsJson.value.trim()) {
        try {
          spec.params = JSON.parse(paramsJson.value);
        } catch (error) {
          ruleForm.querySelector('[data-field="params"] .field-error').textContent = `not JSON: ${error.message}`;
          return;
        }
      }
      try {
        const added = await api("/api/v1/faults", { method: "POST", json: spec });
        announce(`Rule ${added.faults?.[0]?.id ?? ""} added`);
        loadRules();
      } catch (error) {
        const name = fieldOfError(error.message);
        const slot = ruleForm.querySelector(`[data-field="${name}"] .field-error`) || formError;
        slot.textContent = error.message;
        announce(`Rule refused: ${error.message}`, true);
      }
    };
  }

  function buildProxyForm(running) {
    if (!running) {
      fill(proxyForm, h("p", { class: "hint" }, "Start the proxy server to add TCP proxies."));
      return;
    }
    if (proxyForm.childElementCount > 1) return;
    const name = h("input", { name: "name", type: "text", placeholder: "db" });
    const listen = h("input", { name: "listen", type: "text", inputmode: "numeric", value: "0" });
    const upstream = h("input", { name: "upstream", type: "text", placeholder: "127.0.0.1:5432", required: true });
    const formError = h("p", { class: "field-error", role: "alert" });
    fill(
      proxyForm,
      field("Name", name, "name"),
      field("Listen port (0: any)", listen, "listen"),
      field("Upstream host:port", upstream, "upstream"),
      h("div", { class: "toolbar" }, h("button", { type: "submit" }, "Add proxy")),
      formError,
    );
    proxyForm.onsubmit = async (event) => {
      event.preventDefault();
      for (const element of proxyForm.querySelectorAll(".field-error")) element.textContent = "";
      const spec = { upstream: upstream.value.trim(), listen: Number(listen.value || 0), name: name.value.trim() };
      try {
        const added = await api("/api/v1/proxies", { method: "POST", json: spec });
        announce(`Proxy ${added.name} listening on ${added.listen ?? added.port ?? ""}`);
        loadProxies();
      } catch (error) {
        const slot = proxyForm.querySelector(`[data-field="${fieldOfError(error.message)}"] .field-error`) || formError;
        slot.textContent = error.message;
      }
    };
  }

  async function removeRule(id) {
    if (!confirmAction(`Remove fault rule ${id}?`)) return;
    try {
      await api(`/api/v1/faults/${encodeURIComponent(id)}`, { method: "DELETE" });
      announce(`Rule ${id} removed`);
    } catch (error) {
      announce(`Remove: ${error.message}`, true);
    }
    loadRules();
  }

  async function removeAllRules() {
    if (!confirmAction("Remove every fault rule?")) return;
    try {
      await api("/api/v1/faults", { method: "DELETE" });
      announce("All rules removed");
    } catch (error) {
      announce(`Remove all: ${error.message}`, true);
    }
    loadRules();
  }

  async function removeProxy(name) {
    if (!confirmAction(`Remove TCP proxy ${name}?`)) return;
    try {
      await api(`/api/v1/proxies/${encodeURIComponent(name)}`, { method: "DELETE" });
      announce(`Proxy ${name} removed`);
    } catch (error) {
      announce(`Remove: ${error.message}`, true);
    }
    loadProxies();
  }

  async function start() {
    try {
      const body = await api("/api/v1/faults/actions");
      schema = body.servers || null;
      fieldHelp = body.rule_fields || {};
    } catch {
      schema = null; // an API without the schema endpoint: free-form form
    }
    let names = [];
    try {
      names = ((await health()).servers || []).map((server) => server.name).filter((name) => name !== "admin");
    } catch {
      names = [];
    }
    if (stopped) return;
    buildRuleForm(names);
  }

  start();
  loadRules();
  loadProxies();
  const timer = setInterval(loadRules, 2000); // "fired" counts move as traffic hits rules
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
