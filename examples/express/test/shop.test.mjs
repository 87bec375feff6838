// The token shop end to end against a live `billfold dev` running this example's catalog
// (BILLFOLD_URL, BILLFOLD_API_KEY): buy a pack through the simulator's checkout, the tokens arrive
// once, a spend works and a short balance is refused; the tier-gated route opens after subscribing.
// `make test` runs it from tests/node/test_express_example.py, which starts billfold.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import { createClient } from "@billfold/client";

import { createApp } from "../dist/app.js";

const billfoldUrl = process.env.BILLFOLD_URL;
const apiKey = process.env.BILLFOLD_API_KEY;
if (!billfoldUrl || !apiKey) {
  throw new Error("set BILLFOLD_URL and BILLFOLD_API_KEY to a `billfold dev` on examples/express/catalog.toml");
}

let server;
let shop;

before(async () => {
  const app = createApp({ billfold: createClient({ baseUrl: billfoldUrl, apiKey }), publicUrl: "http://shop.test" });
  await new Promise((resolve) => {
    server = app.listen(0, "127.0.0.1", resolve);
  });
  shop = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

async function call(method, path, user, body, headers = {}) {
  const response = await fetch(`${shop}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(user ? { "x-user-id": user } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** What a customer does on Stripe's checkout page: the simulator's Pay button. */
async function pay(url) {
  const sessionId = url.split("/").pop();
  const response = await fetch(`${billfoldUrl}/stripe/_sim/sessions/${sessionId}/pay`, { method: "POST", body: "{}" });
  assert.equal(response.status, 200, await response.clone().text());
  return sessionId;
}

async function settle() {
  const response = await fetch(`${billfoldUrl}/stripe/_sim/flush`, { method: "POST", body: "{}" });
  assert.equal(response.status, 200);
}

async function eventually(check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

const newUser = () => `shop_${randomUUID().slice(0, 8)}`;

test("the catalog lists the token packs and the tiers", async () => {
  const { status, body } = await call("GET", "/api/catalog");
  assert.equal(status, 200);
  assert.deepEqual(body.packs.map((p) => p.id), ["tokens_1k", "tokens_5k", "tokens_12k"]);
  assert.deepEqual(body.plans.map((p) => p.id), ["starter", "plus", "team"]);
});

test("a pack bought through checkout grows the balance once, and spending works", async () => {
  const user = newUser();
  assert.equal((await call("GET", "/api/me", user)).body.tokens, 0);

  const checkout = await call("POST", "/api/checkout", user, { pack: "tokens_5k" });
  assert.equal(checkout.status, 201, JSON.stringify(checkout.body));
  const sessionId = await pay(checkout.body.url);
  // Stripe sends the customer back to the success page, which fulfils the order.
  const success = await call("GET", `/checkout/success?session_id=${sessionId}`);
  assert.equal(success.status, 200);
  assert.deepEqual(success.body, { status: "fulfilled", account: user, tokens: 5500 });
  // The webhook arrives too; the success page reloaded: still 5,500 (5,000 + 500 bonus), once.
  await call("GET", `/checkout/success?session_id=${sessionId}`);
  await settle();
  await eventually(async () => assert.equal((await call("GET", "/api/me", user)).body.tokens, 5500));

  const generated = await call("POST", "/api/generate", user, { prompt: "x".repeat(400) }, { "idempotency-key": "r1" });
  assert.equal(generated.status, 200);
  assert.equal(generated.body.cost, 100);
  assert.equal(generated.body.tokens, 5400);
  // The same request again (a double click, a retry): spent once.
  const again = await call("POST", "/api/generate", user, { prompt: "x".repeat(400) }, { "idempotency-key": "r1" });
  assert.equal(again.body.tokens, 5400);
  assert.equal((await call("GET", "/api/me", user)).body.tokens, 5400);

  const tooMuch = await call("POST", "/api/generate", user, { prompt: "x".repeat(40_000) });
  assert.equal(tooMuch.status, 402);
  assert.deepEqual(tooMuch.body, { error: "not enough tokens", needed: 10_000, available: 5400 });
  assert.equal((await call("GET", "/api/me", user)).body.tokens, 5400);
});

test("the long-context route is for paid tiers: refused on Starter, open after subscribing to Plus", async () => {
  const user = newUser();
  const me = await call("GET", "/api/me", user);
  assert.equal(me.body.plan, "starter");
  const refused = await call("POST", "/api/long-context", user, { document: "a long document" });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.plan, "starter");
  assert.ok(refused.body.reasons.includes("feature_not_in_plan"));

  const checkout = await call("POST", "/api/checkout", user, { plan: "plus" });
  assert.equal(checkout.status, 201, JSON.stringify(checkout.body));
  const sessionId = await pay(checkout.body.url);
  await call("GET", `/checkout/success?session_id=${sessionId}`);
  await settle();
  await eventually(async () => {
    const now = (await call("GET", "/api/me", user)).body;
    assert.equal(now.plan, "plus");
    assert.equal(now.features.long_context, true);
    assert.equal(now.tokens, 2000); // the tier's monthly allowance
  });
  const allowed = await call("POST", "/api/long-context", user, { document: "d".repeat(80) });
  assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  assert.equal(allowed.body.cost, 20);
  assert.equal(allowed.body.tokens, 1980);
});

test("requests without a signed-in user or with nonsense are refused", async () => {
  assert.equal((await call("GET", "/api/me")).status, 401);
  assert.equal((await call("POST", "/api/checkout", newUser(), {})).status, 400);
  const unknown = await call("POST", "/api/checkout", newUser(), { pack: "tokens_none" });
  assert.equal(unknown.status, 400);
  assert.equal((await call("GET", "/checkout/success")).status, 400);
});
