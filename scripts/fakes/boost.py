"""A stand-in for the Boost client CLI (`boost`), run as a real executable by the tests and by
`make run REPLICATE=1` (`install(directory)` writes the executable).

Records every argv as a JSON line in $FAKE_BOOST_DIR/argv.jsonl (and each deal as {time, provider,
piece, outcome} in calls.jsonl) and obeys $FAKE_BOOST_DIR/control.json, whose "providers" map
overrides it per provider ({"providers": {"f01": {"reject": "no"}}}): {"reject": reason} refuses
the deal, {"publish": true} puts accepted deals on the fake Lotus chain, {"identical": true} answers that the proposal is identical, {"fail": message} fails to send,
{"sleep": seconds} hangs first, {"garbage": true} prints non-JSON, {"head": N} sets the chain
head when FULLNODE_API_INFO is not given, {"download": true} fetches the deal's --http-url with its
--http-headers as the provider would (recorded in downloads.jsonl).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

STATE = Path(os.environ.get("FAKE_BOOST_DIR", "."))


def install(directory: Path) -> Path:
    """Write `<directory>/boost`, an executable running this fake with its state in `directory`."""
    import stat
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "boost"
    # exec, so that a timeout's kill reaches the Python process.
    path.write_text(f"#!/bin/sh\nFAKE_BOOST_DIR='{directory}' exec '{sys.executable}' '{Path(__file__).resolve()}' \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def record(opts: dict, outcome: str) -> None:
    with open(STATE / "calls.jsonl", "a") as f:
        f.write(json.dumps({"time": time.time(), "provider": opts.get("provider"), "piece": opts.get("commp"),
                            "outcome": outcome}) + "\n")


def control() -> dict:
    path = STATE / "control.json"
    return json.loads(path.read_text()) if path.exists() else {}


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.exit(code)


def chain_head(ctl: dict) -> int:
    info = os.environ.get("FULLNODE_API_INFO")
    if not info:
        return ctl.get("head", 1000)
    address = info.split(":", 1)[1] if not info.startswith("http") else info
    body = json.dumps({"jsonrpc": "2.0", "method": "Filecoin.ChainHead", "params": [], "id": 1}).encode()
    request = urllib.request.Request(address + "/rpc/v1", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]["Height"]


def flags(args: list) -> dict:
    """Flag values by name; `--http-headers`, a repeatable flag, collects a list."""
    out, i = {"http-headers": []}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            fail(f"ERROR: unexpected argument {arg!r}")
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif name in ("remove-unsealed-copy", "skip-ipni-announce"):
            value = True
        else:
            i += 1
            if i >= len(args):
                fail(f"ERROR: flag --{name} needs a value")
            value = args[i]
        if name == "http-headers":
            out[name].append(value)
        else:
            out[name] = value
        i += 1
    return out


def http_headers(values: list) -> dict:
    """boost's parsing: each value `key=value`, split on "=" into exactly two parts (and, being a
    urfave/cli string slice, a value is also split on commas)."""
    headers = {}
    for value in (part for v in values for part in v.split(",")):
        pieces = value.split("=")
        if len(pieces) != 2:
            fail(f"ERROR: malformed http header: {value}")
        headers[pieces[0]] = pieces[1]
    return headers


def download(url: str, headers: dict) -> None:
    """What the provider's boostd does with an accepted online deal: fetch the URL with the deal's
    headers. The outcome is recorded in $FAKE_BOOST_DIR/downloads.jsonl."""
    import hashlib
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            digest, size = hashlib.sha256(), 0
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            record = {"url": url, "status": response.status, "bytes": size, "sha256": digest.hexdigest()}
    except urllib.error.HTTPError as exc:
        record = {"url": url, "status": exc.code, "bytes": 0, "sha256": None}
    with open(STATE / "downloads.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def publish(answer: dict, opts: dict) -> None:
    """Put the accepted deal on the fake Lotus chain (its Fake.PublishDeal method)."""
    info = os.environ.get("FULLNODE_API_INFO", "")
    address = info.split(":", 1)[1] if info and not info.startswith("http") else info
    params = [opts["wallet"], opts["provider"], opts["commp"], answer["startEpoch"], answer["endEpoch"],
              int(opts["piece-size"]), opts.get("verified", "true") == "true"]
    body = json.dumps({"jsonrpc": "2.0", "method": "Fake.PublishDeal", "params": params, "id": 1}).encode()
    request = urllib.request.Request(address + "/rpc/v1", data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def main() -> None:
    argv = sys.argv[1:]
    with open(STATE / "argv.jsonl", "a") as f:
        f.write(json.dumps(argv) + "\n")
    with open(STATE / "pids", "a") as f:
        f.write(f"{os.getpid()}\n")
    ctl = control()
    repo, as_json, i = None, False, 0
    while i < len(argv) and argv[i].startswith("--"):
        if argv[i] == "--repo":
            repo, i = Path(argv[i + 1]), i + 2
        elif argv[i] == "--json":
            as_json, i = True, i + 1
        elif argv[i] == "--vv":
            i += 1
        else:
            fail(f"ERROR: flag provided but not defined: {argv[i]}")
    if repo is None:
        fail("ERROR: no --repo")
    command, rest = argv[i:i + 1], argv[i + 1:]
    if command == ["wallet"] and rest == ["import"]:
        key = sys.stdin.buffer.read()
        try:
            info = json.loads(bytes.fromhex(key.decode().strip()))
            assert info["Type"] in ("secp256k1", "bls") and info["PrivateKey"]
        except Exception:
            fail("ERROR: decoding key: invalid key info")
        (repo / "keystore").mkdir(parents=True, exist_ok=True)
        (repo / "keystore" / "wallet-default").write_text(json.dumps(info))
        print("imported key f1 successfully")
        return
    if command not in (["deal"], ["offline-deal"]):
        fail(f"ERROR: unknown command {command}")
    if not (repo / "keystore" / "wallet-default").exists():
        fail("ERROR: wallet not found in the repo keystore")
    opts = flags(rest)
    ctl = {**ctl, **(ctl.get("providers") or {}).get(opts.get("provider"), {})}
    if ctl.get("sleep"):
        record(opts, "timeout")
        time.sleep(ctl["sleep"])
    required = ["provider", "commp", "piece-size", "payload-cid", "wallet"]
    if command == ["deal"]:
        required += ["http-url", "car-size"]
    elif "http-url" in opts or "car-size" in opts:
        fail("ERROR: offline-deal takes no --http-url or --car-size")
    for name in required:
        if name not in opts:
            fail(f'ERROR: Required flag "{name}" not set')
    headers = http_headers(opts.pop("http-headers"))
    if headers and command != ["deal"]:
        fail("ERROR: flag provided but not defined: -http-headers")
    if ctl.get("fail"):
        record(opts, "fail")
        fail(f"ERROR: {ctl['fail']}")
    if ctl.get("reject"):
        record(opts, "reject")
        fail(f"ERROR: deal proposal rejected: {ctl['reject']}")
    if ctl.get("identical"):
        record(opts, "identical")
        fail("ERROR: deal proposal is identical to an existing one")
    if ctl.get("garbage"):
        print("sent deal proposal\ndeal uuid: not-json")
        return
    if ctl.get("download") and command == ["deal"]:
        download(opts["http-url"], headers)
    record(opts, "proposed")
    duration = int(opts.get("duration", 518400))
    start = int(opts["start-epoch"]) if "start-epoch" in opts else chain_head(ctl) + 5760
    answer = {
        "dealUuid": str(uuid.uuid4()), "provider": opts["provider"], "clientWallet": opts["wallet"],
        "payloadCid": opts["payload-cid"], "commp": opts["commp"], "startEpoch": start,
        "endEpoch": start + duration, "providerCollateral": "0", "url": opts.get("http-url", ""),
    }
    if ctl.get("publish"):
        publish(answer, opts)
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        print(f"sent deal proposal\n  deal uuid: {answer['dealUuid']}\n  storage provider: {opts['provider']}")


if __name__ == "__main__":
    main()
