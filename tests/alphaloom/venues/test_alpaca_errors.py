"""The one Alpaca error table gives each Alpaca answer the operational meaning the ccxt table gives its counterpart:
network trouble is temporary (unknown outcome for a send), a refusal is a rejection for a send and a venue error for a
read, an unknown symbol in the ingest is the configuration's mistake, anything else unknown for a send."""

from __future__ import annotations

import json

import pytest
import requests
from alpaca.common.exceptions import APIError

from alphaloom.errors import (
    AlphaLoomError,
    ConfigError,
    OrderRejectedError,
    UnknownOrderStateError,
    VenueError,
    VenueTemporaryError,
)
from alphaloom.venues.alpaca_errors import Call, is_duplicate_id, venue_error


def api_error(status: int, code: int, message: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError(json.dumps({"code": code, "message": message}), requests.HTTPError(response=response))


Temp, Reject, Unknown = VenueTemporaryError, OrderRejectedError, UnknownOrderStateError


@pytest.mark.parametrize(
    ("exc", "ingest", "read", "send"),
    [
        (requests.ConnectionError("connection reset"), Temp, Temp, Unknown),
        (requests.ReadTimeout("read timed out"), Temp, Temp, Unknown),
        (api_error(429, 42910000, "rate limit exceeded"), Temp, Temp, Unknown),
        (api_error(503, 50300000, "service unavailable"), Temp, Temp, Unknown),
        (api_error(403, 40310000, "insufficient buying power"), VenueError, VenueError, Reject),
        (api_error(422, 42210000, "qty must be > 0"), VenueError, VenueError, Reject),
        (api_error(401, 40110000, "request is not authorized"), VenueError, VenueError, Reject),
        (api_error(404, 40410000, "asset not found"), ConfigError, VenueError, Reject),
        (api_error(409, 40910000, "conflict"), VenueError, VenueError, Unknown),
        (ValueError("anything else"), VenueError, VenueError, Unknown),
    ],
)  # fmt: skip
def test_each_alpaca_error_means_what_its_ccxt_counterpart_means(
    exc: Exception, ingest: type[AlphaLoomError], read: type[AlphaLoomError], send: type[AlphaLoomError]
) -> None:
    for call, expected in ((Call.INGEST, ingest), (Call.READ, read), (Call.SEND, send)):
        error = venue_error(exc, call, "alpaca: context")
        assert type(error) is expected, (call, exc)
        assert str(error).startswith("alpaca: context: ")


def test_the_message_is_alpacas_and_a_duplicate_client_id_is_recognised() -> None:
    poor = api_error(403, 40310000, "insufficient buying power")
    assert str(venue_error(poor, Call.SEND, "alpaca: submit of c1")) == (
        "alpaca: submit of c1: HTTP 403 40310000: insufficient buying power")  # fmt: skip
    assert is_duplicate_id(api_error(422, 40010001, "client_order_id must be unique"))
    assert not is_duplicate_id(api_error(422, 42210000, "qty must be > 0")) and not is_duplicate_id(poor)
