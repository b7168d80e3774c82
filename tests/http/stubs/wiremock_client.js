// Drives refservers' /__admin with the npm WireMock client (wiremock-rest-client), as a
// JavaScript test suite would: stub, call, verify, scenarios, reset. Prints one JSON
// report on stdout; exits non-zero on the first failed expectation.
// Usage: NODE_PATH=<npm prefix>/node_modules node wiremock_client.js http://127.0.0.1:PORT
const assert = require("node:assert/strict");
const { WireMockRestClient } = require("wiremock-rest-client");

async function main(base) {
  const wm = new WireMockRestClient(base, { logLevel: "warn" });
  const report = {};

  await wm.mappings.deleteAllMappings();
  await wm.requests.deleteAllRequests();
  const created = await wm.mappings.createMapping({
    request: { method: "GET", urlPath: "/js/orders/42", queryParameters: { expand: { equalTo: "items" } } },
    response: { status: 200, jsonBody: { id: 42, items: [] }, headers: { "Content-Type": "application/json" } },
    metadata: { suite: "js" },
  });
  assert.match(created.id, /^[0-9a-f-]{36}$/);

  const answer = await fetch(`${base}/js/orders/42?expand=items`);
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { id: 42, items: [] });
  report.stubbed = answer.status;

  const count = await wm.requests.getCount({ method: "GET", urlPath: "/js/orders/42" });
  assert.equal(count.count, 1);
  const found = await wm.requests.findRequests({ urlPathPattern: "/js/.*" });
  assert.equal(found.requests[0].queryParams.expand.values[0], "items");
  report.count = count.count;

  const all = await wm.mappings.getAllMappings();
  assert.equal(all.meta.total, 1);
  const byMeta = await wm.mappings.findByMetaData({ matchesJsonPath: { expression: "$.suite", equalTo: "js" } });
  assert.equal(byMeta.mappings[0].id, created.id);

  const updated = await wm.mappings.updateMapping(created.id, { ...created, response: { status: 202 } });
  assert.equal(updated.response.status, 202);
  assert.equal((await fetch(`${base}/js/orders/42?expand=items`)).status, 202);

  for (const [required, next, status] of [["Started", "second", 500], ["second", null, 200]]) {
    const mapping = { scenarioName: "js-flaky", requiredScenarioState: required, request: { url: "/js/flaky" }, response: { status } };
    if (next) mapping.newScenarioState = next;
    await wm.mappings.createMapping(mapping);
  }
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${base}/js/flaky`)).status);
  assert.deepEqual(statuses, [500, 200, 200]);
  const scenarios = await wm.scenarios.getAllScenarios();
  assert.equal(scenarios.scenarios[0].state, "second");
  await wm.scenarios.resetAllScenarios();
  assert.equal((await fetch(`${base}/js/flaky`)).status, 500);
  await wm.scenarios.setScenarioState("js-flaky", "second");
  assert.equal((await fetch(`${base}/js/flaky`)).status, 200);
  report.scenario = statuses;

  const unmatched = await wm.requests.getUnmatchedRequests();
  assert.equal(unmatched.requests.length, 0);
  await fetch(`${base}/js/nothing`);
  const misses = await wm.requests.getUnmatchedNearMisses();
  assert.ok(misses.nearMisses.length > 0);

  await wm.mappings.deleteMapping(created.id);
  assert.equal((await wm.mappings.getAllMappings()).meta.total, 2);
  await wm.global.resetAll();
  assert.equal((await wm.requests.getAllRequests()).requests.length, 0);
  assert.equal((await wm.mappings.getAllMappings()).meta.total, 0);
  report.reset = true;
  console.log(JSON.stringify(report));
}

main(process.argv[2]).catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
