"""The CLI's HTTP client: one call per API action, every failure a `CliError` with a clear message."""
from __future__ import annotations

import json
from typing import Any

# urllib.request (with http.client, ssl and email) is imported by the first request: most
# commands that never make one start faster without it.


class CliError(Exception):
    """Printed as one line on stderr; the command exits non-zero."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class ApiClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, route: str, /, **query: Any) -> Any:
        return self.request("GET", route, query=query)

    def post(self, route: str, body: dict) -> Any:
        return self.request("POST", route, body=body)

    def text(self, route: str, /, **query: Any) -> str:
        """A GET whose answer is text (a CSV), not JSON."""
        return self.request("GET", route, query=query, raw=True)

    def request(self, method: str, route: str, body: dict | None = None, query: dict | None = None,
                raw: bool = False) -> Any:
        import urllib.error
        import urllib.parse
        import urllib.request
        url = self.base_url + route
        query = {k: v for k, v in (query or {}).items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read()
                return data.decode("utf-8", "replace") if raw else json.loads(data or b"null")
        except urllib.error.HTTPError as exc:
            raise CliError(_describe_error(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach the service at {self.base_url}: {reason} "
                           "(is `singularity run` started, and is [connection] right?)") from None
        except json.JSONDecodeError:
            raise CliError(f"the service at {self.base_url} answered with something that is not JSON") from None


def _describe_error(exc) -> str:
    """exc: a urllib.error.HTTPError."""
    try:
        body = json.loads(exc.read())
        message = f"{body['error']}"
        if body.get("detail") not in (None, "", {}):
            message += f" ({json.dumps(body['detail']) if not isinstance(body['detail'], str) else body['detail']})"
    except (ValueError, KeyError, TypeError):
        message = exc.reason
    return f"HTTP {exc.code}: {message}"
