"""Request validation: the declarations of shared/schema.py against msgspec and pydantic.

Prints, for the POST /deal body (14 fields) and the POST /preparation body: the cost of checking
one valid body (from bytes: JSON parsing included), the import time each library adds to a
service (which imports aiohttp and pymongo anyway), and the error each gives for the same bad
bodies. msgspec is measured when installed (`pip install msgspec`); the suite does not need it.

    .venv/bin/python bench/schema.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Optional, Union

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.dealmaking.schemas import PROPOSAL  # noqa: E402
from services.preparation.schemas import NEW_PREPARATION  # noqa: E402
from shared.api import InvalidParameter  # noqa: E402

DEAL = {"wallet": "f1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3za", "keyPath": "wallet.key", "provider": "f01234",
        "pieceCid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq", "pieceSize": 2**35,
        "dataCid": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "url": "http://example.com/piece.car", "carSize": "30 GiB", "verified": True, "duration": 518400,
        "startEpoch": 100, "price": "0", "keepUnsealed": True, "announceToIpni": False}
PREPARATION = {"name": "ds", "path": "/data/ds", "dealSize": "32 GiB"}
BAD = [("missing name", {"path": "/x"}), ("name is a number", {"name": 5, "path": "/x"}),
       ("unknown field", {"name": "x", "path": "/x", "colour": "red"}),
       ("dealSize not a size", {"name": "x", "path": "/x", "dealSize": "lots"})]
IMPORT_BASE = "import shared.api"
RUNS = 20_000

# The two bodies' models, written once for both libraries (each fills in its base class).
MODELS = '''
class Preparation({base}):
    name: str
    path: str
    dealSize: Optional[Union[int, str]] = None
    minSize: Optional[Union[int, str]] = None
    maxSize: Optional[Union[int, str]] = None
class Deal({base}):
    wallet: str
    keyPath: str
    provider: str
    pieceCid: str
    pieceSize: Union[int, str]
    dataCid: str
    url: Optional[str] = None
    carSize: Optional[Union[int, str]] = None
    verified: bool = True
    duration: int = 518400
    startEpoch: Optional[int] = None
    price: Optional[Union[int, str]] = None
    keepUnsealed: bool = True
    announceToIpni: bool = True
'''
MSGSPEC_MODELS = "import msgspec" + MODELS.format(base="msgspec.Struct, forbid_unknown_fields=True")
PYDANTIC_MODELS = "import pydantic" + MODELS.format(base='pydantic.BaseModel, extra="forbid", strict=True')


def ours() -> dict:
    return {"deal": lambda raw: PROPOSAL.check("", json.loads(raw)),
            "preparation": lambda raw: NEW_PREPARATION.check("", json.loads(raw)),
            "error": lambda body: _error(lambda: NEW_PREPARATION.check("", body), InvalidParameter)}


def _error(call, kind) -> str:
    try:
        call()
    except kind as exc:
        return " ".join(str(getattr(exc, "message", exc)).split())[:110]
    return "(accepted)"


def msgspec_lib() -> dict | None:
    try:
        import msgspec  # noqa: F401
    except ImportError:
        return None
    scope: dict = {"Optional": Optional, "Union": Union}
    exec(compile(MSGSPEC_MODELS, "<models>", "exec", dont_inherit=True), scope)  # real annotations
    decode_deal = msgspec.json.Decoder(scope["Deal"]).decode
    decode_prep = msgspec.json.Decoder(scope["Preparation"]).decode
    return {"deal": decode_deal, "preparation": decode_prep,
            "error": lambda body: _error(lambda: decode_prep(json.dumps(body)), msgspec.ValidationError)}


def pydantic_lib() -> dict | None:
    try:
        import pydantic
    except ImportError:
        return None
    scope: dict = {"Optional": Optional, "Union": Union}
    exec(compile(PYDANTIC_MODELS, "<models>", "exec", dont_inherit=True), scope)
    deal, prep = scope["Deal"], scope["Preparation"]
    return {"deal": deal.model_validate_json, "preparation": prep.model_validate_json,
            "error": lambda body: _error(lambda: prep.model_validate_json(json.dumps(body)), pydantic.ValidationError)}


def import_ms(code: str, after: str = "pass") -> float:
    """Running `code` in a fresh interpreter once `after` is imported, in milliseconds (best of 5)."""
    best = float("inf")
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", f"import time; {after}; t = time.perf_counter(); {code}; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
        if out.returncode != 0:
            return float("nan")
        best = min(best, float(out.stdout) * 1000)
    return best


def main() -> None:
    libraries = {"json.loads only": {"deal": json.loads, "preparation": json.loads},  # the same-run floor
                 "shared.schema": ours(), "msgspec": msgspec_lib(), "pydantic": pydantic_lib()}
    base = import_ms(IMPORT_BASE)
    # What a service would add: the library and the two models (ours: the preparation schemas).
    imports = {"shared.schema": "import services.preparation.schemas",
               "msgspec": f"from typing import Optional, Union; exec({MSGSPEC_MODELS!r})",
               "pydantic": f"from typing import Optional, Union; exec({PYDANTIC_MODELS!r})"}
    print(f"baseline: `{IMPORT_BASE}` (aiohttp, pymongo) {base:.1f} ms; {RUNS} bodies per figure")
    print(f"{'library':15} {'deal body':>11} {'prep body':>11} {'import added':>13}")
    raw_deal, raw_prep = json.dumps(DEAL).encode(), json.dumps(PREPARATION).encode()
    for name, lib in libraries.items():
        if lib is None:
            print(f"{name:15} not installed")
            continue
        deal = min(timeit.repeat(lambda: lib["deal"](raw_deal), number=RUNS, repeat=3)) / RUNS * 1e6
        prep = min(timeit.repeat(lambda: lib["preparation"](raw_prep), number=RUNS, repeat=3)) / RUNS * 1e6
        added = f"{import_ms(imports[name], after=IMPORT_BASE):10.1f} ms" if name in imports else ""
        print(f"{name:15} {deal:8.1f} us {prep:8.1f} us {added}")
    print("\nerrors for the same bad POST /preparation bodies:")
    for label, body in BAD:
        print(f"  {label}:")
        for name, lib in libraries.items():
            if lib is not None and "error" in lib:
                print(f"    {name:14} {lib['error'](body)}")


if __name__ == "__main__":
    main()
