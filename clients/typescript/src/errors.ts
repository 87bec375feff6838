/**
 * Typed errors: one class per error code billfold answers with, in the same hierarchy as the
 * Python library's exceptions (`billfold.domain.errors`). Catch a parent (`NotFound`, `Conflict`,
 * `AccessError`) to handle a family, or a leaf (`InsufficientBalance`) for one case.
 */

/** The JSON error body billfold answers with (Stripe's shape). */
export interface ErrorBody {
  type?: string;
  code?: string;
  message?: string;
  param?: string | null;
  [detail: string]: unknown;
}

export class BillfoldError extends Error {
  /** The HTTP status, or 0 when no answer arrived (a connection error). */
  readonly status: number;
  /** billfold's error code, e.g. `insufficient_balance`. */
  readonly code: string;
  /** Stripe's error type, e.g. `invalid_request_error`, `balance_error`. */
  readonly type: string;
  /** The error object as billfold sent it (details included). */
  readonly body: ErrorBody;
  /** The `Request-Id` header of the answer, when billfold sent one. */
  readonly requestId: string | undefined;

  constructor(status: number, body: ErrorBody, requestId?: string) {
    super(body.message ?? `billfold answered ${status}`);
    this.name = new.target.name;
    this.status = status;
    this.code = body.code ?? "billfold_error";
    this.type = body.type ?? "api_error";
    this.body = body;
    this.requestId = requestId;
  }
}

/** No answer: the connection failed or timed out on every attempt. */
export class APIConnectionError extends BillfoldError {
  constructor(message: string, readonly cause?: unknown) {
    super(0, { type: "api_connection_error", code: "connection_error", message });
  }
}

// 400
export class ValidationError extends BillfoldError {
  get param(): string | undefined {
    return typeof this.body.param === "string" ? this.body.param : undefined;
  }
}
export class UnknownUnit extends ValidationError {}
export class UnknownPackage extends ValidationError {}
export class UnknownPlan extends ValidationError {}
export class PayloadTooLarge extends ValidationError {}

// 401, 403, 429
export class AccessError extends BillfoldError {}
export class Unauthenticated extends AccessError {}
export class Forbidden extends AccessError {}
export class RateLimited extends AccessError {
  /** Seconds to wait before trying again (the `Retry-After` header). */
  retryAfter: number | undefined;
}

// 404
export class NotFound extends BillfoldError {}
export class AccountNotFound extends NotFound {}
export class HoldNotFound extends NotFound {}
export class OrderNotFound extends NotFound {}
export class EventNotFound extends NotFound {}

// 409
export class Conflict extends BillfoldError {}
/** The idempotency key was used before with another request. */
export class IdempotencyConflict extends Conflict {}
/** A request with this idempotency key is still being processed. */
export class IdempotencyKeyInUse extends Conflict {}
export class HoldNotActive extends Conflict {}
export class OrderNotResolvable extends Conflict {}
export class EventNotRetryable extends Conflict {}
export class CheckoutNotFulfillable extends Conflict {}

// 402
export class PaymentError extends BillfoldError {}
export class InsufficientBalance extends PaymentError {
  get unit(): string {
    return String(this.body.unit ?? "");
  }
  get requested(): number {
    return Number(this.body.requested ?? 0);
  }
  /** What the account can spend of `unit` right now. */
  get available(): number {
    return Number(this.body.available ?? 0);
  }
}

// 5xx
export class APIError extends BillfoldError {}
export class StorageError extends APIError {}
export class StorageUnavailable extends StorageError {}
export class Contention extends StorageError {}
export class StripeError extends APIError {}
export class StripeUnavailable extends StripeError {}

type ErrorClass = new (status: number, body: ErrorBody, requestId?: string) => BillfoldError;

const BY_CODE: Record<string, ErrorClass> = {
  invalid_request: ValidationError,
  unknown_unit: UnknownUnit,
  unknown_package: UnknownPackage,
  unknown_plan: UnknownPlan,
  payload_too_large: PayloadTooLarge,
  access_denied: AccessError,
  unauthenticated: Unauthenticated,
  forbidden: Forbidden,
  rate_limited: RateLimited,
  not_found: NotFound,
  account_not_found: AccountNotFound,
  hold_not_found: HoldNotFound,
  order_not_found: OrderNotFound,
  event_not_found: EventNotFound,
  conflict: Conflict,
  idempotency_conflict: IdempotencyConflict,
  idempotency_key_in_use: IdempotencyKeyInUse,
  hold_not_active: HoldNotActive,
  order_not_resolvable: OrderNotResolvable,
  event_not_retryable: EventNotRetryable,
  checkout_not_fulfillable: CheckoutNotFulfillable,
  payment_error: PaymentError,
  insufficient_balance: InsufficientBalance,
  storage_error: StorageError,
  storage_unavailable: StorageUnavailable,
  contention: Contention,
  stripe_error: StripeError,
  stripe_unavailable: StripeUnavailable,
};

function byStatus(status: number): ErrorClass {
  if (status === 400 || status === 413) return ValidationError;
  if (status === 401) return Unauthenticated;
  if (status === 403) return Forbidden;
  if (status === 404) return NotFound;
  if (status === 409) return Conflict;
  if (status === 402) return PaymentError;
  if (status === 429) return RateLimited;
  if (status === 502) return StripeError;
  if (status === 503) return StorageUnavailable;
  return status >= 500 ? APIError : BillfoldError;
}

/** The typed error for an answer: by billfold's code, else by the HTTP status. */
export function errorFromResponse(status: number, payload: unknown, headers?: Headers): BillfoldError {
  let body: ErrorBody = { message: `billfold answered ${status}` };
  if (payload && typeof payload === "object") {
    const inner = (payload as { error?: unknown }).error;
    if (inner && typeof inner === "object") body = inner as ErrorBody;
    else if ("code" in payload || "message" in payload) body = payload as ErrorBody;
  } else if (typeof payload === "string" && payload) {
    body = { message: payload };
  }
  const cls = (body.code !== undefined && BY_CODE[body.code]) || byStatus(status);
  const error = new cls(status, body, headers?.get("request-id") ?? undefined);
  if (error instanceof RateLimited) error.retryAfter = parseRetryAfter(headers?.get("retry-after"));
  return error;
}

/** `Retry-After` in seconds (a number of seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - now) / 1000);
}
