"""The one kubo HTTP RPC call the indexer makes: import a CAR and pin its root."""
from __future__ import annotations

import json

import aiohttp


class KuboError(Exception):
    pass


async def dag_import(api_url: str, car_path: str, expected_root: str, timeout: float = 600.0) -> None:
    """POST /api/v0/dag/import?pin-roots=true with the CAR as a multipart file; the CAR is streamed
    from disk. Raises KuboError unless kubo reports `expected_root` imported and pinned."""
    url = api_url.rstrip("/") + "/api/v0/dag/import"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            with open(car_path, "rb") as car:
                form = aiohttp.FormData()
                form.add_field("file", car, filename="index.car", content_type="application/vnd.ipld.car")
                async with session.post(url, params={"pin-roots": "true"}, data=form) as response:
                    body = await response.text()
                    if response.status != 200:
                        raise KuboError(f"kubo answered HTTP {response.status}: {body.strip()[:300]}")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise KuboError(f"cannot reach kubo at {api_url}: {exc}") from None
    pinned = set()
    # The answer is one JSON object per line; a root line is {"Root": {"Cid": {"/": ...}, "PinErrorMsg": ...}}.
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            raise KuboError(f"kubo answered something that is not JSON: {line[:200]}") from None
        root = message.get("Root")
        if not root:
            continue
        if root.get("PinErrorMsg"):
            raise KuboError(f"kubo could not pin {root.get('Cid', {}).get('/')}: {root['PinErrorMsg']}")
        pinned.add(root.get("Cid", {}).get("/"))
    if expected_root not in pinned:
        raise KuboError(f"kubo did not report {expected_root} as pinned (reported: {sorted(pinned) or 'nothing'})")
