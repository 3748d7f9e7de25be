"""Validate real HTTP exchanges against api/openapi.yaml."""

from __future__ import annotations

from functools import cache

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from tests.helpers import REPO_ROOT


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(REPO_ROOT / "api" / "openapi.yaml"))


def check_response(response: requests.Response) -> None:
    """Raise if the response (status, headers, body) breaks the spec of its route."""
    spec().validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
