/**
 * A `fetch` that retries what is safe to retry: connection errors, timeouts, 5xx, 429 and a 409
 * `idempotency_key_in_use` (the first attempt is still being processed). Every request that moves
 * value carries an `Idempotency-Key` (set before the first attempt, so every retry sends the same
 * one): billfold answers a retried request with the first one's result instead of doing it twice.
 */

import { APIConnectionError, parseRetryAfter } from "./errors.js";

export interface RetryOptions {
  /** Attempts after the first (default 2). */
  maxRetries: number;
  /** Milliseconds before one attempt is abandoned (default 30 000). */
  timeoutMs: number;
  /** First backoff in milliseconds (default 500); doubles each retry, with jitter. */
  backoffMs: number;
  /** The longest wait between attempts in milliseconds (default 8 000), `Retry-After` included. */
  maxBackoffMs: number;
  fetch: typeof fetch;
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: Omit<RetryOptions, "fetch" | "sleep"> = {
  maxRetries: 2,
  timeoutMs: 30_000,
  backoffMs: 500,
  maxBackoffMs: 8_000,
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Exponential backoff with "equal jitter": half fixed, half random. */
export function backoff(attempt: number, options: Pick<RetryOptions, "backoffMs" | "maxBackoffMs">): number {
  const ceiling = Math.min(options.maxBackoffMs, options.backoffMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function retryable(response: Response): Promise<boolean> {
  if (response.status === 429 || response.status >= 500) return true;
  if (response.status !== 409) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: string } };
    return body.error?.code === "idempotency_key_in_use";
  } catch {
    return false;
  }
}

export function retryingFetch(partial: Partial<RetryOptions> = {}): (request: Request) => Promise<Response> {
  const options: RetryOptions = {
    ...DEFAULT_RETRY,
    fetch: (...args) => globalThis.fetch(...args),
    sleep,
    ...partial,
  };
  return async (request: Request): Promise<Response> => {
    // The body is read once so that every attempt can send it again.
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
    for (let attempt = 0; ; attempt++) {
      const signals = [AbortSignal.timeout(options.timeoutMs)];
      if (request.signal) signals.push(request.signal);
      const init: RequestInit = {
        method: request.method,
        headers: request.headers,
        body,
        signal: anySignal(signals),
        redirect: request.redirect,
      };
      const last = attempt >= options.maxRetries;
      let response: Response;
      try {
        response = await options.fetch(request.url, init);
      } catch (error) {
        if (request.signal?.aborted) throw error; // the caller gave up: no retry
        if (last) throw new APIConnectionError(`could not reach billfold: ${describe(error)}`, error);
        await options.sleep(backoff(attempt, options));
        continue;
      }
      if (last || !(await retryable(response))) return response;
      const hinted = parseRetryAfter(response.headers.get("retry-after"));
      const wait = hinted === undefined ? backoff(attempt, options) : Math.min(options.maxBackoffMs, hinted * 1000);
      await response.body?.cancel();
      await options.sleep(wait);
    }
  };
}

function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  // Node 18 and older browsers: forward the first abort by hand.
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
