"""Running the Boost client CLI for one stateless deal.

The boost client signs proposals with a wallet from its own repo (`--repo`, default
~/.boost-client). To keep deals stateless and the key out of any long-lived place, each deal gets
a throwaway repo: `boost --repo TMP wallet import` reads the key file's content on stdin (so the
key path never appears in an argv that `ps` could show), then `boost --repo TMP --json deal
--wallet ...` sends the proposal, and the repo is deleted. The full node boost needs to read the
chain head is passed as FULLNODE_API_INFO from [connection] unless the environment already sets it.
A deal downloaded from our hosting service carries its token as `--http-headers`, which boost
hands to the provider for the transfer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.dealmaking.proposal import Proposal
from shared.config import Config, Connection

log = logging.getLogger(__name__)

REJECTED_MARKER = "deal proposal rejected"
# The provider already holds this exact proposal: an earlier attempt reached it but its answer was
# lost. Probably accepted; tracking confirms it on chain. Sending it again would change nothing.
IDENTICAL_MARKER = "deal proposal is identical"
_MAX_MESSAGE = 2000


class BoostFailed(Exception):
    """The proposal was not sent or not answered: the tool's own message."""


class BoostRejected(Exception):
    """The storage provider answered and said no: its reason."""


class BoostIdentical(Exception):
    """The provider already has this very proposal (its message)."""


class BoostUnavailable(Exception):
    """The boost executable cannot be started at all."""


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return (parts.scheme, (parts.hostname or "").lower(), port) if parts.hostname else None


def transfer_headers(config: Config, url: str | None) -> list[str]:
    """boost's `--http-headers` values for a deal's download: the hosting token, when one is set
    and the URL is on our hosting service ([connection] http_hosting_service, or the public
    replication_service.http_url_prefix). A URL elsewhere gets nothing: the provider sends these
    headers to whatever host the URL names."""
    token = config.http_hosting_service.token
    if not token or url is None:
        return []
    ours = {_origin(u) for u in (config.connection.http_hosting_service, config.replication_service.http_url_prefix) if u}
    if _origin(url) not in ours - {None}:
        return []
    return [f"Authorization=Bearer {token}"]


def deal_arguments(proposal: Proposal, headers: list[str] = ()) -> list[str]:
    args = ["offline-deal"] if proposal.offline else ["deal", "--http-url", proposal.url,
                                                      "--car-size", str(proposal.car_size)]
    if not proposal.offline:
        for header in headers:
            args += ["--http-headers", header]
    args += [
        "--provider", proposal.provider,
        "--commp", proposal.piece_cid,
        "--piece-size", str(proposal.piece_size),
        "--payload-cid", proposal.data_cid,
        "--verified=" + ("true" if proposal.verified else "false"),
        "--duration", str(proposal.duration),
        "--wallet", proposal.wallet,
    ]
    if proposal.start_epoch is not None:
        args += ["--start-epoch", str(proposal.start_epoch)]
    if proposal.price is not None:
        args += ["--storage-price", proposal.price]
    if not proposal.keep_unsealed:
        args.append("--remove-unsealed-copy")
    if not proposal.announce_to_ipni:
        args.append("--skip-ipni-announce")
    return args


def environment(connection: Connection) -> dict[str, str]:
    env = dict(os.environ)
    if "FULLNODE_API_INFO" not in env and connection.full_node_api:
        # Lotus' API-info format: "<jwt>:<address>", or the bare address without a token.
        token = connection.full_node_token
        env["FULLNODE_API_INFO"] = f"{token}:{connection.full_node_api}" if token else connection.full_node_api
    return env


async def run(argv: list[str], env: dict[str, str], timeout: float, stdin: bytes | None = None) -> Completed:
    """Run without a shell; past the timeout (or on cancellation) the whole process group is killed."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    except (FileNotFoundError, PermissionError) as exc:
        raise BoostUnavailable(f"cannot start {argv[0]}: {exc.strerror}") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        raise BoostFailed(f"boost did not finish within {timeout:g}s and was killed") from None
    finally:
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await process.wait()
    return Completed(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


def _output(result: Completed, secrets: list[str]) -> str:
    """What boost printed, with any secret it might echo (a verbose boost logs its arguments)
    blanked: its messages end up in DealState and in the API's answers."""
    text = result.stderr + "\n" + result.stdout
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _message(result: Completed, secrets: list[str] = ()) -> str:
    lines = [line.strip() for line in _output(result, secrets).splitlines() if line.strip()]
    text = " | ".join(lines[-5:]) or f"exit status {result.returncode}"
    return text[-_MAX_MESSAGE:]


def _rejection(result: Completed, secrets: list[str] = ()) -> str | None:
    for line in _output(result, secrets).splitlines():
        at = line.lower().find(REJECTED_MARKER)
        if at >= 0:
            reason = line[at + len(REJECTED_MARKER):].lstrip(" :").strip()
            return (reason or line.strip())[:_MAX_MESSAGE]
    return None


def parse_output(stdout: str) -> dict:
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        raise BoostFailed(f"boost printed no JSON: {stdout.strip()[:200]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dealUuid"), str) or not data["dealUuid"]:
        raise BoostFailed(f"boost's JSON has no dealUuid: {stdout.strip()[:200]!r}")
    for key in ("startEpoch", "endEpoch"):
        if data.get(key) is not None and (isinstance(data[key], bool) or not isinstance(data[key], int)):
            raise BoostFailed(f"boost's JSON has a non-integer {key}: {data[key]!r}")
    return data


async def send_deal(config: Config, proposal: Proposal) -> dict:
    """Send one proposal; its parsed JSON answer, or BoostRejected / BoostFailed / BoostUnavailable."""
    settings = config.deal_making_service
    key = proposal.key_path.read_bytes()
    env = environment(config.connection)
    headers = transfer_headers(config, proposal.url)
    secrets = [config.http_hosting_service.token] if headers else []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    repo = tempfile.mkdtemp(prefix="boost-client-")
    base = [settings.boost_path, *shlex.split(settings.other_boost_client_cli_options), "--repo", repo]
    try:
        imported = await run([*base, "wallet", "import"], env, settings.timeout, stdin=key)
        if imported.returncode != 0:
            raise BoostFailed(f"importing the wallet key failed: {_message(imported)}")
        remaining = max(deadline - loop.time(), 0.001)
        result = await run([*base, "--json", *deal_arguments(proposal, headers)], env, remaining)
    finally:
        # The repo's keystore holds the imported private key.
        shutil.rmtree(repo, ignore_errors=True)
    if result.returncode != 0:
        if IDENTICAL_MARKER in _output(result, secrets).lower():
            raise BoostIdentical(_message(result, secrets))
        reason = _rejection(result, secrets)
        if reason is not None:
            raise BoostRejected(reason)
        raise BoostFailed(_message(result, secrets))
    return parse_output(result.stdout)
