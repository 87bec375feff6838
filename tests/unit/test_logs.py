"""JSON log lines: one object per line, the request id from the context, no credential."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from billfold.domain import errors
from billfold.entrypoints import logs
from billfold.settings import load_settings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def test_a_json_line_carries_the_request_id_and_never_a_secret(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        admin_token="adm_secret_value_1",
        api_keys="bf_key_secret_2",
        stripe_webhook_secrets="whsec_c2VjcmV0",
        metrics_token="metrics_secret_3",
    )
    logs.configure(settings, default="json", own=True)
    structlog.contextvars.bind_contextvars(request_id="req-1")
    log = logging.getLogger("billfold.test")
    log.info("stdlib line with %s and %s", "adm_secret_value_1", "Bearer some.token.value")
    log.warning("extras", extra={"authorization": "x", "event_id": "evt_1", "account_id": "u_1"})
    logs.get("billfold.test").info(
        "structlog line", signature="t=1,v1=abc", key="bf_key_secret_2 and metrics_secret_3"
    )
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
    log.error("token %s key %s secret %s", jwt_like, "sk_live_abcdef", "whsec_c2VjcmV0")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert len(parsed) == 5
    assert all(p["request_id"] == "req-1" for p in parsed)
    for secret in (
        "adm_secret_value_1",
        "bf_key_secret_2",
        "metrics_secret_3",
        "whsec_c2VjcmV0",
        "some.token.value",
        jwt_like,
        "sk_live_abcdef",
        "v1=abc",
    ):
        assert not any(secret in line for line in lines), secret
    assert parsed[1]["event_id"] == "evt_1"
    assert parsed[1]["account_id"] == "u_1"
    assert parsed[1]["authorization"] == "[redacted]"
    assert parsed[3]["logger"] == "uvicorn.error"


def test_console_lines_are_readable_not_json(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(load_settings(), default="console", own=True)
    logging.getLogger("billfold.test").warning("hello operator")
    err = capsys.readouterr().err
    assert "hello operator" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])


def test_the_log_format_setting_is_checked() -> None:
    assert load_settings(log_format="JSON").log_format == "json"
    with pytest.raises(errors.ConfigurationError, match="BILLFOLD_LOG_FORMAT"):
        load_settings(log_format="xml")
