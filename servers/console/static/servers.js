// Servers: every server of this process from /health (name, state, ports), with
// connection strings to copy, the local CA to download, the SSH host key fingerprint,
// and the users of the user table.

import { api, health } from "./api.js";
import { copyButton, fill, h } from "./dom.js";

function hostOf(server) {
  const host = server.host === "0.0.0.0" || server.host === "::" ? location.hostname : server.host;
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Commands that talk to ``server`` with the usual clients, for the demo user. */
export function connectionStrings(server, user = "demo") {
  const host = hostOf(server);
  const ports = server.listeners || {};
  const port = ports.main ?? Object.values(ports)[0];
  const lines = {
    smtp: [`swaks --server ${host}:${port} --to ${user}@example.com --from me@example.com`],
    pop3: [`curl pop3://${host}:${port}/ -u ${user}:PASSWORD`],
    imap: [`curl "imap://${host}:${port}/INBOX" -u ${user}:PASSWORD`],
    ftp: [`lftp -u ${user} -p ${port} ${host}`, `curl ftp://${host}:${port}/ -u ${user}:PASSWORD`],
    sftp: [`sftp -P ${port} ${user}@${host}`],
    http: [`curl http://${host}:${port}/get`],
    telnet: [`telnet ${host.replace(/^\[|\]$/g, "")} ${port}`],
    proxy: [`curl -x http://${host}:${port} http://example.com/`],
    jsonrpc: [`curl -d '{"jsonrpc": "2.0", "method": "echo", "params": ["hi"], "id": 1}' -H 'Content-Type: application/json' http://${host}:${port}/`],
    dns: [`dig @${host.replace(/^\[|\]$/g, "")} -p ${port} example.test`],
    xmlrpc: [`curl -d '<methodCall><methodName>system.listMethods</methodName></methodCall>' http://${host}:${port}/`],
  };
  if (ports.tls && server.name === "smtp") lines.smtp.push(`swaks --server ${host}:${ports.tls} --tlsc --to ${user}@example.com`);
  if (ports.tls && server.name === "imap") lines.imap.push(`curl "imaps://${host}:${ports.tls}/INBOX" --cacert refservers-ca.pem -u ${user}:PASSWORD`);
  if (ports.tls && server.name === "pop3") lines.pop3.push(`curl pop3s://${host}:${ports.tls}/ --cacert refservers-ca.pem -u ${user}:PASSWORD`);
  return port === undefined ? [] : lines[server.name] || [];
}

export function mount(container) {
  let stopped = false;
  const rows = h("tbody");
  const users = h("ul", { class: "users" });
  const keys = h("dl", { class: "keys" });
  container.append(
    h(
      "div",
      { class: "servers" },
      h(
        "section",
        { "aria-labelledby": "servers-title" },
        h("h2", { id: "servers-title" }, "Servers"),
        h(
          "table",
          { "aria-label": "Servers" },
          h("thead", {}, h("tr", {}, ["Server", "State", "Ports", "Connect"].map((name) => h("th", { scope: "col" }, name)))),
          rows,
        ),
      ),
      h(
        "div",
        { class: "columns" },
        h("section", { "aria-labelledby": "trust-title" }, h("h2", { id: "trust-title" }, "TLS and SSH"), keys),
        h("section", { "aria-labelledby": "users-title" }, h("h2", { id: "users-title" }, "Users"), users),
      ),
    ),
  );

  async function load() {
    let body;
    try {
      body = await health();
    } catch (error) {
      fill(rows, h("tr", {}, h("td", { colspan: 4 }, `Health: ${error}`)));
      return;
    }
    if (stopped) return;
    const servers = body.servers || [];
    fill(
      rows,
      servers.map((server) => {
        const ports = Object.entries(server.listeners || {});
        return h(
          "tr",
          { class: `state-${server.state}`, dataset: { server: server.name } },
          h("th", { scope: "row" }, h("a", { href: `#/traffic?server=${encodeURIComponent(server.name)}`, title: `Traffic of ${server.name}` }, server.name)),
          h("td", {}, h("span", { class: `state ${server.state}` }, server.state)),
          h("td", { class: "ports" }, ports.map(([listener, port]) => h("span", { class: "port" }, listener === "main" ? `${port}` : `${listener} ${port}`))),
          h("td", { class: "connect" }, connectionStrings(server).map((line) => h("div", {}, h("code", {}, line), " ", copyButton(line)))),
        );
      }),
    );
    const sftp = servers.find((server) => server.name === "sftp");
    const items = [
      h("dt", {}, "Local CA certificate"),
      h(
        "dd",
        {},
        h("a", { class: "button", href: "/api/v1/tls/ca.pem", download: "refservers-ca.pem" }, "Download CA certificate"),
        h("p", { class: "hint" }, "Every TLS listener chains to it: give it to your client (curl --cacert, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)."),
      ),
    ];
    if (sftp?.host_key_fingerprint) {
      items.push(
        h("dt", {}, "SSH host key fingerprint"),
        h("dd", {}, h("code", {}, sftp.host_key_fingerprint), " ", copyButton(sftp.host_key_fingerprint)),
      );
    }
    fill(keys, items);
    try {
      const list = (await api("/api/v1/users")).users || [];
      fill(
        users,
        list.map((user) =>
          h("li", {}, h("span", { class: "name" }, user.name), user.read_only ? h("span", { class: "tag" }, "read-only") : null, user.mailbox ? h("a", { href: `#/inbox?user=${encodeURIComponent(user.name)}` }, "mailbox") : null, h("a", { href: `#/files?user=${encodeURIComponent(user.name)}` }, "home folder")),
        ),
      );
    } catch {
      fill(users, h("li", { class: "hint" }, "The users endpoint comes with the mail servers; start smtp, pop3 or imap."));
    }
  }

  load();
  const timer = setInterval(load, 5000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
