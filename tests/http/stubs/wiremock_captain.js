// Drives refservers with wiremock-captain, the other npm WireMock client: register with
// features (urlPath, query matchers, scenario, priority), call, read the journal back.
// Usage: NODE_PATH=<npm prefix>/node_modules node wiremock_captain.js http://127.0.0.1:PORT
const assert = require("node:assert/strict");
const { WireMock, EndpointFeature, MatchingAttributes } = require("wiremock-captain");

async function main(base) {
  const mock = new WireMock(base);
  await mock.clearAll();
  const report = {};

  await mock.register(
    { method: "POST", endpoint: "/captain/orders", body: { item: "tea" }, queryParameters: { tenant: "a.*" } },
    { status: 201, body: { id: 7, item: "tea" } },
    { requestEndpointFeature: EndpointFeature.UrlPath, requestQueryParamFeatures: { tenant: MatchingAttributes.Matches }, requestIgnoreExtraElements: true },
  );
  const created = await fetch(`${base}/captain/orders?tenant=acme`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ item: "tea", note: "extra" }),
  });
  assert.equal(created.status, 201);
  assert.deepEqual(await created.json(), { id: 7, item: "tea" });
  report.created = created.status;

  for (const [required, next, status] of [["Started", "ready", 503], ["ready", undefined, 200]]) {
    await mock.register(
      { method: "GET", endpoint: "/captain/ready" },
      { status },
      { scenario: { scenarioName: "warmup", requiredScenarioState: required, newScenarioState: next } },
    );
  }
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${base}/captain/ready`)).status);
  assert.deepEqual(statuses, [503, 200, 200]);
  report.scenario = statuses;

  const calls = await mock.getRequestsForAPI("POST", "/captain/orders?tenant=acme");
  assert.equal(calls.length, 1);
  assert.deepEqual(JSON.parse(calls[0].request.body), { item: "tea", note: "extra" });
  report.journalled = calls.length;
  assert.equal((await mock.getAllMappings()).length, 3);
  await mock.clearAll();
  assert.equal((await mock.getAllMappings()).length, 0);
  console.log(JSON.stringify(report));
}

main(process.argv[2]).catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
