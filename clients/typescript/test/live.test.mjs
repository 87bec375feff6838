// Against a live `billfold dev` (BILLFOLD_URL, BILLFOLD_API_KEY; the Stripe simulator under
// BILLFOLD_URL/stripe): a pack bought through the simulator grows the balance once, spends and
// their typed errors, idempotent retries through a proxy that loses answers, paging.
// `make test` runs it from tests/clients/test_typescript_client.py, which starts the server.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, request as httpRequest } from "node:http";
import { test } from "node:test";

import {
  Forbidden,
  IdempotencyConflict,
  InsufficientBalance,
  NotFound,
  Unauthenticated,
  ValidationError,
  createClient,
} from "../dist/index.js";

const baseUrl = process.env.BILLFOLD_URL;
const apiKey = process.env.BILLFOLD_API_KEY;
if (!baseUrl || !apiKey) {
  throw new Error("set BILLFOLD_URL and BILLFOLD_API_KEY to a running `billfold dev` (make test does)");
}
const billfold = createClient({ baseUrl, apiKey });

async function simulator(path) {
  const response = await fetch(`${baseUrl}/stripe/_sim${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

async function balance(accountId, unit = "credits") {
  const account = await billfold.getAccount(accountId);
  return account.balances[unit] ?? 0;
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

/** Buy `pack` for a new account through the simulator's checkout; the account's id. */
async function buy(pack = "starter") {
  const accountId = `ts_${randomUUID().slice(0, 8)}`;
  const session = await billfold.createCheckoutSession({
    account_id: accountId,
    package: pack,
    success_url: `${baseUrl}/success`,
  });
  assert.equal(session.account_id, accountId);
  assert.equal(session.url, `${baseUrl}/stripe/pay/${session.id}`);
  await simulator(`/sessions/${session.id}/pay`);
  const first = await billfold.fulfillCheckoutSession(session.id);
  const again = await billfold.fulfillCheckoutSession(session.id);
  assert.equal(first.status, "fulfilled");
  assert.equal(again.status, "fulfilled");
  await simulator("/flush");
  return { accountId, session };
}

test("a pack bought through the simulator grows the balance once", async () => {
  const { accountId } = await buy("starter");
  // the success page and the webhook both deliver the purchase: it counts once
  await eventually(async () => assert.equal(await balance(accountId), 500));
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(await balance(accountId), 500);
  const grants = [];
  for await (const txn of billfold.transactions(accountId)) grants.push(txn);
  assert.equal(grants.length, 1);
});

test("spend, then a typed 402 with what is available, then an idempotency conflict", async () => {
  const { accountId } = await buy("starter");
  await eventually(async () => assert.equal(await balance(accountId), 500));

  const spent = await billfold.spend(accountId, { unit: "credits", amount: 120, reason: "report" }, { idempotencyKey: `r-${accountId}` });
  assert.equal(spent.balance, 380);
  const replayed = await billfold.spend(accountId, { unit: "credits", amount: 120, reason: "report" }, { idempotencyKey: `r-${accountId}` });
  assert.equal(replayed.transaction_id, spent.transaction_id);
  assert.equal(await balance(accountId), 380);

  await assert.rejects(billfold.spend(accountId, { unit: "credits", amount: 10_000 }), (error) => {
    assert.ok(error instanceof InsufficientBalance, String(error));
    assert.equal(error.status, 402);
    assert.equal(error.code, "insufficient_balance");
    assert.equal(error.available, 380);
    assert.equal(error.requested, 10_000);
    return true;
  });
  await assert.rejects(
    billfold.spend(accountId, { unit: "credits", amount: 1 }, { idempotencyKey: `r-${accountId}` }),
    IdempotencyConflict,
  );
  assert.equal(await balance(accountId), 380);
});

test("other API errors arrive as their classes", async () => {
  await assert.rejects(billfold.getAccount(`ts_missing_${randomUUID().slice(0, 8)}`), NotFound);
  await assert.rejects(billfold.spend("ts_x", { unit: "credits", amount: -1 }), ValidationError);
  await assert.rejects(createClient({ baseUrl, apiKey: "bf_wrong" }).getAccount("ts_x"), Unauthenticated);
  await assert.rejects(billfold.listEvents(), Forbidden); // the admin token's, not a server key's
});

test("a spend whose answer is lost is retried with its key and counted once", async () => {
  const { accountId } = await buy("starter");
  await eventually(async () => assert.equal(await balance(accountId), 500));
  // A proxy that forwards every request to billfold but drops the first answer to each spend.
  const target = new URL(baseUrl);
  const dropped = new Set();
  const keys = [];
  const proxy = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          const body = [];
          answer.on("data", (chunk) => body.push(chunk));
          answer.on("end", () => {
            const key = req.headers["idempotency-key"];
            if (req.url.endsWith("/spend")) keys.push(key);
            if (req.url.endsWith("/spend") && !dropped.has(key)) {
              dropped.add(key);
              req.socket.destroy(); // billfold did it; the caller never hears
              return;
            }
            res.writeHead(answer.statusCode, answer.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  try {
    const viaProxy = createClient({ baseUrl: `http://127.0.0.1:${proxy.address().port}`, apiKey, backoffMs: 10 });
    const spent = await viaProxy.spend(accountId, { unit: "credits", amount: 75 });
    assert.equal(spent.balance, 425);
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1]);
    assert.equal(await balance(accountId), 425);
  } finally {
    proxy.close();
  }
});

test("paging walks every transaction, one per page", async () => {
  const { accountId } = await buy("starter");
  await eventually(async () => assert.equal(await balance(accountId), 500));
  for (let i = 1; i <= 3; i++) await billfold.spend(accountId, { unit: "credits", amount: i });
  const ids = [];
  for await (const txn of billfold.transactions(accountId, { limit: 1 })) ids.push(txn.id);
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 4);
  const first = await billfold.listTransactions(accountId, { limit: 2 });
  assert.deepEqual(first.data.map((t) => t.id), ids.slice(0, 2));
  assert.equal(first.has_more, true);
});

test("entitlements and check answer for the default plan", async () => {
  const accountId = `ts_${randomUUID().slice(0, 8)}`;
  await billfold.updateAccount(accountId, {});
  const found = await billfold.entitlements(accountId);
  assert.equal(found.plan, "free");
  assert.equal(found.source, "default");
  const check = await billfold.check(accountId, { feature: "auto_trading" });
  assert.equal(check.allowed, false);
  assert.deepEqual(check.reasons.map((r) => r.code), ["feature_not_in_plan"]);
});
