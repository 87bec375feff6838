/**
 * `@billfold/client`: billfold's HTTP API from TypeScript, in Node 18+ and in browsers.
 *
 * ```ts
 * import { createClient, InsufficientBalance } from "@billfold/client";
 * const billfold = createClient({ baseUrl: "http://127.0.0.1:8000", apiKey: process.env.BILLFOLD_API_KEY });
 * await billfold.spend("user_1", { unit: "credits", amount: 10 });
 * ```
 *
 * Types come from billfold's OpenAPI document (`src/schema.d.ts`, generated); the client adds an
 * `Idempotency-Key` to every call that moves value (kept across its retries), retries connection
 * errors, 5xx and 429 (honouring `Retry-After`) with backoff and jitter, and throws typed errors.
 */

import createFetchClient, { type Client as FetchClient } from "openapi-fetch";

import { errorFromResponse } from "./errors.js";
import { DEFAULT_RETRY, retryingFetch } from "./retry.js";
import type { components, paths } from "./schema.js";

export * from "./errors.js";
export { backoff, retryingFetch } from "./retry.js";
export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type Account = Schemas["AccountResponse"];
export type Transaction = Schemas["TransactionResponse"];
export type Grant = Schemas["GrantResponse"];
export type Hold = Schemas["HoldResponse"];
export type CheckoutSession = Schemas["CheckoutSessionResponse"];
export type Entitlements = Schemas["EntitlementsResponse"];
export type CheckResult = Schemas["CheckResponse"];

type JsonBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;
type Query<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;

export interface ClientOptions {
  /** billfold's address, e.g. `https://billing.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** A server API key (`BILLFOLD_API_KEY`): keep it on the server. */
  apiKey?: string;
  /** An end user's token (JWT): what a browser uses; it may act only on its own account. */
  userToken?: string;
  /** Attempts after the first on connection errors, 5xx and 429 (default 2). */
  maxRetries?: number;
  /** Milliseconds before one attempt is abandoned (default 30 000). */
  timeoutMs?: number;
  /** First backoff in milliseconds (default 500). */
  backoffMs?: number;
  /** Longest wait between attempts in milliseconds (default 8 000). */
  maxBackoffMs?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** The key to send; by default a new one is made for each call (and kept across its retries). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** One page of a list: `data`, and whether there is more after its last item. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
}

/** Every item of a list, page after page (`starting_after` the last id seen). */
export async function* paginate<T extends { id: string }>(
  fetchPage: (startingAfter: string | undefined) => Promise<Page<T>>,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.data;
    const last = page.data[page.data.length - 1];
    if (!page.has_more || last === undefined) return;
    cursor = last.id;
  }
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function newKey(): string {
  return globalThis.crypto.randomUUID();
}

async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw errorFromResponse(response.status, error, response.headers);
  return data as T;
}

function options(o: RequestOptions | undefined): { headers: Record<string, string>; signal?: AbortSignal } {
  const headers: Record<string, string> = {};
  if (o?.idempotencyKey) headers["Idempotency-Key"] = o.idempotencyKey;
  return o?.signal ? { headers, signal: o.signal } : { headers };
}

export function createClient(config: ClientOptions) {
  const token = config.apiKey ?? config.userToken;
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const api: FetchClient<paths> = createFetchClient<paths>({
    baseUrl: config.baseUrl.replace(/\/+$/, ""),
    headers,
    fetch: retryingFetch({
      maxRetries: config.maxRetries ?? DEFAULT_RETRY.maxRetries,
      timeoutMs: config.timeoutMs ?? DEFAULT_RETRY.timeoutMs,
      backoffMs: config.backoffMs ?? DEFAULT_RETRY.backoffMs,
      maxBackoffMs: config.maxBackoffMs ?? DEFAULT_RETRY.maxBackoffMs,
      ...(config.fetch ? { fetch: config.fetch } : {}),
    }),
  });
  // Every write gets a key before its first attempt: the retries reuse the same Request headers.
  api.use({
    onRequest({ request }) {
      if (WRITES.has(request.method) && !request.headers.has("Idempotency-Key")) {
        request.headers.set("Idempotency-Key", newKey());
      }
      return request;
    },
  });

  const account = (account_id: string) => ({ path: { account_id } });

  const client = {
    /** The underlying typed `openapi-fetch` client, for anything not wrapped here. */
    raw: api,

    health: () => unwrap(api.GET("/healthz")),
    catalog: () => unwrap(api.GET("/v1/catalog")),

    // --- accounts, balances, history ----------------------------------------------------------
    getAccount: (accountId: string, o?: RequestOptions) =>
      unwrap(api.GET("/v1/accounts/{account_id}", { params: account(accountId), ...options(o) })),
    updateAccount: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}", "put">, o?: RequestOptions) =>
      unwrap(api.PUT("/v1/accounts/{account_id}", { params: account(accountId), body, ...options(o) })),
    listTransactions: (accountId: string, query: Query<"/v1/accounts/{account_id}/transactions", "get"> = {}) =>
      unwrap(api.GET("/v1/accounts/{account_id}/transactions", { params: { ...account(accountId), query } })),
    transactions: (accountId: string, query: Omit<Query<"/v1/accounts/{account_id}/transactions", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listTransactions(accountId, { ...query, starting_after })),
    listGrants: (accountId: string, query: Query<"/v1/accounts/{account_id}/grants", "get"> = {}) =>
      unwrap(api.GET("/v1/accounts/{account_id}/grants", { params: { ...account(accountId), query } })),
    grants: (accountId: string, query: Omit<Query<"/v1/accounts/{account_id}/grants", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listGrants(accountId, { ...query, starting_after })),
    grant: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/grants", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/accounts/{account_id}/grants", { params: account(accountId), body, ...options(o) })),
    /** Operators (admin token): take value away, with a reason; 402 when the balance is short. */
    adjust: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/adjustments", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/accounts/{account_id}/adjustments", { params: account(accountId), body, ...options(o) })),
    listHolds: (accountId: string, query: Query<"/v1/accounts/{account_id}/holds", "get"> = {}) =>
      unwrap(api.GET("/v1/accounts/{account_id}/holds", { params: { ...account(accountId), query } })),
    holds: (accountId: string, query: Omit<Query<"/v1/accounts/{account_id}/holds", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listHolds(accountId, { ...query, starting_after })),
    /** Operators (admin token): search accounts by `email`, `stripe_customer_id` or `query`. */
    listAccounts: (query: Query<"/v1/accounts", "get"> = {}) => unwrap(api.GET("/v1/accounts", { params: { query } })),
    accounts: (query: Omit<Query<"/v1/accounts", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listAccounts({ ...query, starting_after })),

    // --- spending -------------------------------------------------------------------------------
    spend: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/spend", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/accounts/{account_id}/spend", { params: account(accountId), body, ...options(o) })),
    createHold: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/holds", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/accounts/{account_id}/holds", { params: account(accountId), body, ...options(o) })),
    getHold: (holdId: string) => unwrap(api.GET("/v1/holds/{hold_id}", { params: { path: { hold_id: holdId } } })),
    captureHold: (holdId: string, body: JsonBody<"/v1/holds/{hold_id}/capture", "post"> = {}, o?: RequestOptions) =>
      unwrap(api.POST("/v1/holds/{hold_id}/capture", { params: { path: { hold_id: holdId } }, body, ...options(o) })),
    releaseHold: (holdId: string, o?: RequestOptions) =>
      unwrap(api.POST("/v1/holds/{hold_id}/release", { params: { path: { hold_id: holdId } }, ...options(o) })),

    // --- checkout ---------------------------------------------------------------------------------
    createCheckoutSession: (body: JsonBody<"/v1/checkout/sessions", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/checkout/sessions", { body, ...options(o) })),
    /** From the success page: grant a paid session now instead of waiting for the webhook. */
    fulfillCheckoutSession: (sessionId: string, o?: RequestOptions) =>
      unwrap(
        api.POST("/v1/checkout/sessions/{session_id}/fulfill", {
          params: { path: { session_id: sessionId } },
          ...options(o),
        }),
      ),

    // --- subscriptions and entitlements ---------------------------------------------------------
    entitlements: (accountId: string) =>
      unwrap(api.GET("/v1/accounts/{account_id}/entitlements", { params: account(accountId) })),
    check: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/check", "post">) =>
      unwrap(api.POST("/v1/accounts/{account_id}/check", { params: account(accountId), body })),
    listSubscriptions: (accountId: string, query: Query<"/v1/accounts/{account_id}/subscriptions", "get"> = {}) =>
      unwrap(api.GET("/v1/accounts/{account_id}/subscriptions", { params: { ...account(accountId), query } })),
    changePlan: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/subscription", "post">, o?: RequestOptions) =>
      unwrap(api.POST("/v1/accounts/{account_id}/subscription", { params: account(accountId), body, ...options(o) })),
    cancelSubscription: (
      accountId: string,
      query: Query<"/v1/accounts/{account_id}/subscription", "delete"> = {},
      o?: RequestOptions,
    ) =>
      unwrap(api.DELETE("/v1/accounts/{account_id}/subscription", { params: { ...account(accountId), query }, ...options(o) })),
    billingPortal: (accountId: string, body: JsonBody<"/v1/accounts/{account_id}/billing-portal", "post"> = {}) =>
      unwrap(api.POST("/v1/accounts/{account_id}/billing-portal", { params: account(accountId), body })),

    // --- operators (admin token) ------------------------------------------------------------------
    listEvents: (query: Query<"/v1/events", "get"> = {}) => unwrap(api.GET("/v1/events", { params: { query } })),
    events: (query: Omit<Query<"/v1/events", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listEvents({ ...query, starting_after })),
    listOrders: (query: Query<"/v1/orders", "get"> = {}) => unwrap(api.GET("/v1/orders", { params: { query } })),
    orders: (query: Omit<Query<"/v1/orders", "get">, "starting_after"> = {}) =>
      paginate((starting_after) => client.listOrders({ ...query, starting_after })),
  };
  return client;
}

export type BillfoldClient = ReturnType<typeof createClient>;
