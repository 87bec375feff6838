// The client's own behaviour against a local stand-in server (no billfold needed): idempotency
// keys, retries and their limits, Retry-After, typed errors, paging.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import {
  APIConnectionError,
  Forbidden,
  IdempotencyConflict,
  InsufficientBalance,
  NotFound,
  RateLimited,
  StorageUnavailable,
  ValidationError,
  backoff,
  createClient,
  errorFromResponse,
  parseRetryAfter,
} from "../dist/index.js";

let server;
let baseUrl;
let script = []; // what the stand-in answers, one entry per request; then 200 {}
const seen = [];

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const next = script.shift() ?? { status: 200, body: {} };
      if (next.drop) {
        req.socket.destroy();
        return;
      }
      res.writeHead(next.status, { "content-type": "application/json", ...(next.headers ?? {}) });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

function fresh(answers, options = {}) {
  script = answers;
  seen.length = 0;
  return createClient({ baseUrl, apiKey: "bf_test_key", backoffMs: 1, maxBackoffMs: 50, ...options });
}

const spendBody = { unit: "credits", amount: 5 };
const spent = { status: 200, body: { object: "spend", balance: 1 } };

test("a write carries a generated Idempotency-Key, the same one on every retry", async () => {
  const client = fresh([{ drop: true }, { status: 503, body: { error: { code: "storage_unavailable" } } }, spent]);
  await client.spend("user_1", spendBody);
  assert.equal(seen.length, 3);
  const keys = seen.map((r) => r.headers["idempotency-key"]);
  assert.match(keys[0], /^[0-9a-f-]{36}$/);
  assert.deepEqual(new Set(keys).size, 1);
  assert.deepEqual(seen.map((r) => JSON.parse(r.body)), [spendBody, spendBody, spendBody]);
  assert.equal(seen[0].headers.authorization, "Bearer bf_test_key");
  assert.equal(seen[0].url, "/v1/accounts/user_1/spend");
});

test("two calls get two keys; a key the caller gives is sent as given; reads carry none", async () => {
  const client = fresh([spent, spent, spent, { status: 200, body: {} }]);
  await client.spend("user_1", spendBody);
  await client.spend("user_1", spendBody);
  await client.spend("user_1", spendBody, { idempotencyKey: "order-42" });
  await client.getAccount("user_1");
  const keys = seen.map((r) => r.headers["idempotency-key"]);
  assert.notEqual(keys[0], keys[1]);
  assert.equal(keys[2], "order-42");
  assert.equal(keys[3], undefined);
});

test("429 waits for Retry-After, then succeeds", async () => {
  const waits = [];
  const client = fresh(
    [{ status: 429, headers: { "retry-after": "0.02" }, body: { error: { code: "rate_limited" } } }, spent],
    { maxBackoffMs: 5000 },
  );
  const started = Date.now();
  await client.spend("user_1", spendBody);
  waits.push(Date.now() - started);
  assert.equal(seen.length, 2);
  assert.ok(waits[0] >= 15, `waited ${waits[0]} ms`);
});

test("retries stop after maxRetries: the last answer's typed error is thrown", async () => {
  const unavailable = { status: 503, body: { error: { type: "api_error", code: "storage_unavailable", message: "db down" } } };
  const client = fresh([unavailable, unavailable, unavailable, unavailable], { maxRetries: 2 });
  await assert.rejects(client.getAccount("user_1"), (error) => {
    assert.ok(error instanceof StorageUnavailable);
    assert.equal(error.status, 503);
    assert.equal(error.message, "db down");
    return true;
  });
  assert.equal(seen.length, 3);
});

test("connections that keep failing end in APIConnectionError", async () => {
  const client = fresh([{ drop: true }, { drop: true }], { maxRetries: 1 });
  await assert.rejects(client.getAccount("user_1"), APIConnectionError);
  assert.equal(seen.length, 2);
});

test("4xx answers are not retried and become typed errors", async () => {
  const cases = [
    [{ status: 402, body: { error: { type: "balance_error", code: "insufficient_balance", unit: "credits", requested: 9, available: 4 } } }, InsufficientBalance],
    [{ status: 409, body: { error: { type: "idempotency_error", code: "idempotency_conflict" } } }, IdempotencyConflict],
    [{ status: 404, body: { error: { code: "account_not_found" } } }, NotFound],
    [{ status: 403, body: { error: { code: "forbidden" } } }, Forbidden],
    [{ status: 400, body: { error: { code: "invalid_request", param: "amount" } } }, ValidationError],
  ];
  for (const [answer, cls] of cases) {
    const client = fresh([answer, spent]);
    await assert.rejects(client.spend("user_1", spendBody), cls);
    assert.equal(seen.length, 1, cls.name);
  }
  const error = errorFromResponse(402, cases[0][0].body);
  assert.equal(error.available, 4);
  assert.equal(error.requested, 9);
  assert.equal(error.unit, "credits");
  assert.equal(errorFromResponse(400, cases[4][0].body).param, "amount");
});

test("a 409 idempotency_key_in_use is retried with the same key", async () => {
  const inUse = { status: 409, body: { error: { code: "idempotency_key_in_use" } } };
  const client = fresh([inUse, spent]);
  await client.spend("user_1", spendBody);
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);
});

test("RateLimited carries retryAfter; Retry-After parses seconds and dates", () => {
  const headers = new Headers({ "retry-after": "7" });
  const error = errorFromResponse(429, { error: { code: "rate_limited" } }, headers);
  assert.ok(error instanceof RateLimited);
  assert.equal(error.retryAfter, 7);
  assert.equal(parseRetryAfter("3"), 3);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6);
  assert.equal(parseRetryAfter("soon"), undefined);
});

test("backoff grows, stays under its ceiling and is jittered", () => {
  const options = { backoffMs: 100, maxBackoffMs: 1000 };
  for (let attempt = 0; attempt < 8; attempt++) {
    const ceiling = Math.min(1000, 100 * 2 ** attempt);
    const wait = backoff(attempt, options);
    assert.ok(wait >= ceiling / 2 && wait <= ceiling, `${attempt}: ${wait}`);
  }
  const draws = new Set(Array.from({ length: 20 }, () => backoff(3, options)));
  assert.ok(draws.size > 1);
});

test("the paging helper follows starting_after until has_more is false", async () => {
  const page = (ids, more) => ({ status: 200, body: { object: "list", data: ids.map((id) => ({ id })), has_more: more } });
  const client = fresh([page(["txn_3", "txn_2"], true), page(["txn_1"], false)]);
  const ids = [];
  for await (const txn of client.transactions("user_1", { limit: 2 })) ids.push(txn.id);
  assert.deepEqual(ids, ["txn_3", "txn_2", "txn_1"]);
  assert.equal(seen[0].url, "/v1/accounts/user_1/transactions?limit=2");
  assert.equal(seen[1].url, "/v1/accounts/user_1/transactions?limit=2&starting_after=txn_2");
});
