"""Checks on the values of a deal proposal: Filecoin addresses, CIDs, sizes and epochs.

Everything here raises `InvalidParameter` naming the field, so a bad request never reaches boost.
The deal making service checks each proposal with them, replication a request's deal parameters
before storing it.
"""
from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import libipld

from shared.api import InvalidParameter

EPOCHS_PER_DAY = 2880
MIN_DURATION = 180 * EPOCHS_PER_DAY
MAX_DURATION = 1278 * EPOCHS_PER_DAY
DEFAULT_DURATION = MIN_DURATION
MIN_PIECE_SIZE = 128  # the smallest Fr32-padded piece
MAX_PIECE_SIZE = 64 * 2**30
# Epochs are int64 on chain (and in BSON); ~2.9 million years of 30 s epochs is plenty.
MAX_START_EPOCH = 2**52
# Far above the whole FIL supply (2e27 attoFIL); bounds the number before it is built.
MAX_PRICE_DIGITS = 40
# An exported wallet key is a few hundred bytes of hex.
MAX_KEY_FILE = 64 * 1024

FIL_COMMITMENT_UNSEALED = 0xF101
SHA2_256_TRUNC254_PADDED = 0x1012

# The network prefix: `f` on mainnet, `t` on test networks such as calibnet.
_NETWORKS = ("f", "t")
_ID_RE = re.compile(r"^[ft]0(0|[1-9][0-9]{0,18})$")
_BASE32_RE = re.compile(r"^[a-z2-7]+$")
# protocol -> payload length in bytes: a blake2b-160 key hash (secp256k1) or a 48-byte BLS key.
_PAYLOAD_SIZES = {1: 20, 3: 48}


def _checksum(protocol: int, payload: bytes) -> bytes:
    return hashlib.blake2b(bytes([protocol]) + payload, digest_size=4).digest()


def encode_address(protocol: int, payload: bytes, network: str = "f") -> str:
    """The string form of an f1/f3 address (used by tests to build valid ones)."""
    text = base64.b32encode(payload + _checksum(protocol, payload)).decode().lower().rstrip("=")
    return f"{network}{protocol}{text}"


def _key_address(field: str, value: str) -> str:
    network, protocol, text = value[0], value[1], value[2:]
    if network not in _NETWORKS or protocol not in "13":
        raise InvalidParameter(f"{field} must be an f1 or f3 wallet address", value)
    size = _PAYLOAD_SIZES[int(protocol)]
    expected_length = len(base64.b32encode(bytes(size + 4)).rstrip(b"="))
    if len(text) != expected_length or not _BASE32_RE.match(text):
        raise InvalidParameter(f"{field} is not a well-formed f{protocol} address", value)
    padded = text.upper() + "=" * (-len(text) % 8)
    raw = base64.b32decode(padded)
    payload, checksum = raw[:size], raw[size:]
    if _checksum(int(protocol), payload) != checksum:
        raise InvalidParameter(f"{field} has a wrong address checksum", value)
    if encode_address(int(protocol), payload, network) != value:
        # The last character carries unused bits; only the canonical spelling names the address.
        raise InvalidParameter(f"{field} is not a canonically encoded address", value)
    return value


def wallet_address(field: str, value: str) -> str:
    """A client wallet: it signs the proposal, so it is a key address (f1 or f3), never an ID."""
    if len(value) < 3:
        raise InvalidParameter(f"{field} must be an f1 or f3 wallet address", value)
    return _key_address(field, value)


def provider_address(field: str, value: str) -> str:
    """Storage providers are miner actors, always named by their ID address (f0...)."""
    if not _ID_RE.match(value):
        raise InvalidParameter(f"{field} must be a storage provider ID address such as f01234", value)
    return value


def piece_cid(field: str, value: str) -> str:
    if not value.startswith("baga"):
        raise InvalidParameter(f"{field} must be a piece CID (baga...)", value)
    cid = _decode_cid(field, value)
    if cid["version"] != 1 or cid["codec"] != FIL_COMMITMENT_UNSEALED:
        raise InvalidParameter(f"{field} must be a CIDv1 with codec fil-commitment-unsealed", value)
    if cid["hash"]["code"] != SHA2_256_TRUNC254_PADDED or cid["hash"]["size"] != 32:
        raise InvalidParameter(f"{field} must use the sha2-256-trunc254-padded multihash", value)
    return value


def data_cid(field: str, value: str) -> str:
    cid = _decode_cid(field, value)
    if cid["version"] == 1 and cid["codec"] == FIL_COMMITMENT_UNSEALED:
        raise InvalidParameter(f"{field} must be the payload (root) CID, not a piece CID", value)
    return value


def _decode_cid(field: str, value: str) -> dict:
    try:
        return libipld.decode_cid(value)
    except Exception as exc:  # libipld raises ValueError or its own types depending on the defect
        raise InvalidParameter(f"{field} is not a valid CID", str(exc)) from None


def piece_size(field: str, value: int) -> int:
    if value < MIN_PIECE_SIZE or value > MAX_PIECE_SIZE or value & (value - 1):
        raise InvalidParameter(
            f"{field} must be a power of two between {MIN_PIECE_SIZE} and {MAX_PIECE_SIZE} bytes", value)
    return value


def car_size(field: str, value: int, padded_piece_size: int) -> int:
    # Fr32 padding stores 127 bytes of data in every 128 of the piece.
    limit = padded_piece_size // 128 * 127
    if value < 1 or value > limit:
        raise InvalidParameter(f"{field} must be between 1 and {limit} (the piece's unpadded size)", value)
    return value


def duration(field: str, value: int) -> int:
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise InvalidParameter(
            f"{field} must be between {MIN_DURATION} and {MAX_DURATION} epochs (180 to 1278 days)", value)
    return value


def http_url(field: str, value: str) -> str:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidParameter(f"{field} must not contain whitespace or control characters", value)
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError when out of range
    except ValueError as exc:
        raise InvalidParameter(f"{field} is not a valid URL: {exc}", value) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(f"{field} must be an http:// or https:// URL (omit it for an offline deal)", value)
    return value


def start_epoch(field: str, value: int) -> int:
    if not 0 <= value <= MAX_START_EPOCH:
        raise InvalidParameter(f"{field} must be between 0 and {MAX_START_EPOCH}", value)
    return value


def price(field: str, value) -> str:
    """attoFIL per epoch per GiB, as boost takes it: a whole non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidParameter(f"{field} must be a whole number of attoFIL (an integer or a decimal string)")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidParameter(f"{field} must be a whole number of attoFIL", value) from None
    if not number.is_finite() or number.adjusted() >= MAX_PRICE_DIGITS:
        # NaN and Infinity fail the comparisons below; 1e999999999 would become a billion digits.
        raise InvalidParameter(f"{field} must be a whole number of attoFIL below 10^{MAX_PRICE_DIGITS}", value)
    if number < 0 or number != number.to_integral_value():
        raise InvalidParameter(f"{field} must be a whole, non-negative number of attoFIL", value)
    return str(int(number))


def key_path(field: str, value: str, key_dir: str) -> Path:
    # The path itself is a secret's location: errors never echo it. It must stay inside key_dir,
    # or any file the service can read (/etc/shadow) would be fed to boost and its errors echoed.
    try:
        root = Path(key_dir).expanduser().resolve()
        path = (root / Path(value).expanduser()).resolve()
        if not path.is_relative_to(root):
            raise InvalidParameter(f"{field} must name a file inside the configured key_dir")
        if not path.is_file():
            raise InvalidParameter(f"{field} does not name an existing file")
        if path.stat().st_size > MAX_KEY_FILE:
            raise InvalidParameter(f"{field} names a file too large to be a wallet key (over {MAX_KEY_FILE} bytes)")
        with path.open("rb"):
            pass
    except OSError as exc:
        # A name too long for the file system (ENAMETOOLONG), a symlink loop, a file we may not
        # read: bad input, named by its reason only.
        raise InvalidParameter(f"{field} names no file the service can read: {exc.strerror}") from None
    return path
