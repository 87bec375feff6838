"""Errors the simulated API answers, in Stripe's shape: ``{"error": {"type", "message", ...}}``.

ApiError                 one error response: HTTP status, type, message, optional code and param
├── parameter_missing()  400 parameter_missing
├── parameter_unknown()  400 parameter_unknown
├── invalid()            400 with the code given (parameter_invalid_integer, ...)
├── resource_missing()   404 resource_missing (400 when the id came in a parameter)
├── unrecognized_url()   404, no code, as Stripe answers an unknown path or method
├── authentication()     401 for a missing or wrong API key
├── card_declined()      402 card_error card_declined, with the decline code
└── unsupported()        400 for a parameter or value Stripe accepts and the simulator does not
"""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes"


class ApiError(Exception):
    """A request the simulated Stripe API refuses."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"{DOCS}/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if request_id is not None:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def parameter_missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def parameter_unknown(param: str) -> ApiError:
    return ApiError(
        400,
        f"Received unknown parameter: {param}",
        code="parameter_unknown",
        param=param,
    )


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, code=code, param=param)


def resource_missing(kind: str, object_id: str, *, param: str | None = None) -> ApiError:
    # Stripe answers 404 for an unknown id in the URL, 400 for one passed as a parameter.
    return ApiError(
        400 if param else 404,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param or "id",
    )


def unrecognized_url(method: str, path: str) -> ApiError:
    return ApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def authentication(message: str) -> ApiError:
    return ApiError(401, message)


def card_declined(message: str, *, decline_code: str, param: str | None = None) -> ApiError:
    return ApiError(
        402,
        message,
        type_="card_error",
        code="card_declined",
        param=param,
        decline_code=decline_code,
    )


def unsupported(what: str, *, param: str | None = None) -> ApiError:
    return ApiError(400, f"The Stripe simulator does not support {what}.", param=param)
