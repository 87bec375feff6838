"""What the sync and async clients share, without I/O: how each call is described, when a call is
tried again and after how long, and how an error body becomes billfold's own exception.

Both clients send a :class:`Call` and act on what :func:`retry_delay` and :func:`raise_for`
decide; only the sending (``httpx.Client`` or ``httpx.AsyncClient``) and the sleeping differ.
"""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import httpx
from pydantic import BaseModel

from billfold.domain import errors

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
INITIAL_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0
USER_AGENT: Final = "billfold-python-client"
# A 409 that means "the first request with this key is still running": trying again is right.
RETRYABLE_CODES: Final = frozenset({errors.IdempotencyKeyInUse.code})


class APIConnectionError(errors.BillfoldError):
    """billfold could not be reached (connection refused or dropped, or no answer in time)."""

    code = "api_connection_error"


class UnexpectedResponse(errors.BillfoldError):
    """billfold answered with something that is not one of its responses."""

    code = "unexpected_response"


@dataclass(frozen=True, slots=True)
class Call(Generic[M]):
    """One API operation: method, path, query, JSON body and the model of its answer.

    ``idempotency_key`` is set on every call that moves value: the caller's, or a new UUID4, the
    same on every retry of the call."""

    method: str
    path: str
    model: type[M]
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    idempotency_key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}

    def query(self) -> dict[str, Any]:
        return {k: _param(v) for k, v in self.params.items() if v is not None}


def _param(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


BOUNDS: Final = ("gt", "gte", "lt", "lte")


def bounds(name: str, given: Mapping[str, int] | None) -> dict[str, int]:
    """Stripe's range parameters: ``{"gte": 5}`` for ``name`` is ``name[gte]=5``."""
    if not given:
        return {}
    unknown = set(given) - set(BOUNDS)
    if unknown:
        raise ValueError(f"{name} takes {', '.join(BOUNDS)}, not {', '.join(sorted(unknown))}")
    return {f"{name}[{op}]": value for op, value in given.items()}


def moving(idempotency_key: str | None) -> str:
    """The key of a value-moving call: the caller's, else a new one."""
    return idempotency_key or str(uuid.uuid4())


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body without the fields left at ``None`` (the API's defaults apply to those)."""
    return {k: v for k, v in fields.items() if v is not None}


def auth_header(api_key: str | None, user_token: str | None, admin_token: str | None) -> str:
    given = [c for c in (api_key, user_token, admin_token) if c is not None]
    if len(given) != 1:
        raise ValueError("pass exactly one of api_key, user_token or admin_token")
    if not given[0]:
        raise ValueError("the credential is empty")
    return f"Bearer {given[0]}"


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s ... at most 8 s, each between half
    and all of its step, so that many clients failing together do not retry together."""
    step = min(MAX_DELAY, INITIAL_DELAY * 2.0**attempt)
    return step / 2 + random.uniform(0, step / 2)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), when the answer has one."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retryable(response: httpx.Response) -> bool:
    if response.status_code == 429 or response.status_code >= 500:
        return True
    return response.status_code == 409 and error_code(response) in RETRYABLE_CODES


def retry_delay(response: httpx.Response | None, attempt: int) -> float | None:
    """How long to wait before trying again, or ``None`` not to: a connection error
    (``response`` is ``None``), a 5xx or a 429 is retried; ``Retry-After`` is honoured when given,
    up to a minute (longer, and the error is raised now)."""
    if response is not None and not retryable(response):
        return None
    asked = retry_after(response) if response is not None else None
    if asked is None:
        return backoff(attempt)
    return asked if asked <= MAX_RETRY_AFTER else None


def error_code(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


# --- errors --------------------------------------------------------------------------------------


def _classes(root: type[errors.BillfoldError]) -> dict[str, type[errors.BillfoldError]]:
    found: dict[str, type[errors.BillfoldError]] = {}
    pending = [root]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


# Read when the first error arises, so that subclasses defined later are found too.
_BY_CODE: dict[str, type[errors.BillfoldError]] = {}

# An error whose code this client does not know answers as its status's class.
BY_STATUS: Final[dict[int, type[errors.BillfoldError]]] = {
    400: errors.ValidationError,
    401: errors.Unauthenticated,
    402: errors.PaymentError,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    429: errors.RateLimited,
    502: errors.StripeUnavailable,
    503: errors.StorageUnavailable,
}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def exception_for(response: httpx.Response) -> errors.BillfoldError:
    """billfold's own exception for an error answer, with the details the body carries
    (``InsufficientBalance.available``, ``RateLimited.retry_after``, ...). ``details`` also holds
    ``http_status`` and, when the server sent one, ``request_id``."""
    if not _BY_CODE:
        _BY_CODE.update(_classes(errors.BillfoldError))
    exc: errors.BillfoldError
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        exc = _construct(
            BY_STATUS.get(response.status_code, UnexpectedResponse),
            f"billfold answered {response.status_code} without an error body.",
            {},
            response,
        )
    else:
        code, message = error["code"], str(error.get("message") or "")
        details = {k: v for k, v in error.items() if k not in ("type", "code", "message")}
        cls = _BY_CODE.get(code) or BY_STATUS.get(response.status_code, errors.BillfoldError)
        exc = _construct(cls, message or None, details, response)
        if exc.code != code:
            exc.code = code  # keep the server's code, even where the class is a parent's
    exc.details["http_status"] = response.status_code
    request_id = response.headers.get("x-request-id")
    if request_id:
        exc.details["request_id"] = request_id
    return exc


def _construct(
    cls: type[errors.BillfoldError],
    message: str | None,
    details: dict[str, Any],
    response: httpx.Response,
) -> errors.BillfoldError:
    """An instance of ``cls`` with the server's message and details, whatever its constructor
    takes; the attributes its own constructor sets are set from the body."""
    exc = cls.__new__(cls)
    errors.BillfoldError.__init__(exc, message, **details)
    if isinstance(exc, errors.InsufficientBalance):
        exc.unit = str(details.get("unit", ""))
        exc.requested = _int(details.get("requested"))
        exc.available = _int(details.get("available"))
    elif isinstance(exc, errors.RateLimited):
        exc.retry_after = _int(details.get("retry_after"), int(retry_after(response) or 0))
    elif isinstance(exc, errors.ConstraintViolation):
        exc.constraint = str(details.get("constraint", ""))
    return exc


def parse(call: Call[M], response: httpx.Response) -> M:
    try:
        return call.model.model_validate(response.json())
    except ValueError as exc:  # not JSON, or not the model (pydantic's error is a ValueError)
        raise UnexpectedResponse(
            f"{call.method} {call.path} answered {response.status_code} with a body that is not "
            f"a {call.model.__name__}.",
            http_status=response.status_code,
        ) from exc
