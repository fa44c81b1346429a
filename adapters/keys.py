"""Key files: the AES key for encryption at rest and the Ed25519 keys that sign bundles.

Secrets live in files only the owner can read (mode 0600), written once (never overwritten:
losing a cipher key loses the log) and refused when group or others could read them, as ssh
does. Neither the cipher key nor a centre's private key ever enters the database; a centre's
PUBLIC key does (the `Centre` aggregate), so that every site checks bundles the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from adapters.files import KEY_FILE, open_private, read_input, write_private
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CIPHER_KEY_ENV = "FRACTION_LEDGER_CIPHER_KEY"
CIPHER_KEY_FILE_ENV = "FRACTION_LEDGER_CIPHER_KEY_FILE"
CIPHER_KEY_BYTES = 32  # AES-256


class KeyFileError(ValueError):
    """A key that is missing, malformed or too widely readable (a configuration error)."""


def write_secret(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600; refuse to replace an existing file."""
    try:
        fd = open_private(path, exclusive=True)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already; it is not overwritten (move it away first)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is readable by others (mode {stat.filemode(mode)}): chmod 600 {path}")
    return read_input(path, KEY_FILE, "key file")


# ---- encryption at rest -------------------------------------------------------------------


def new_cipher_key() -> str:
    return base64.b64encode(os.urandom(CIPHER_KEY_BYTES)).decode()


def check_cipher_key(text: str, where: str) -> str:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where}: the cipher key is not base64") from None
    if len(raw) not in (16, 24, 32):
        raise KeyFileError(f"{where}: the cipher key must be 16, 24 or 32 bytes (base64), got {len(raw)}")
    return text.strip()


def cipher_key_from_env(key_file: str | None = None) -> str | None:
    """The configured key: a key file (option, then env) or the key itself in the environment."""
    named = key_file or os.environ.get(CIPHER_KEY_FILE_ENV)
    if named:
        return check_cipher_key(read_secret(Path(named)).decode(), str(named))
    value = os.environ.get(CIPHER_KEY_ENV)
    return check_cipher_key(value, CIPHER_KEY_ENV) if value else None


# ---- centre signing keys (Ed25519) ------------------------------------------------------------


def public_key_text(key: Ed25519PublicKey) -> str:
    """The 32 raw bytes, base64: short enough to read over the phone or put in an SLA."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def fingerprint(public_key: str) -> str:
    return "SHA256:" + hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:32]


def generate_centre_key(private_path: Path) -> tuple[str, Path]:
    """A new key pair: the private key (PEM, 0600) at `private_path`, the public key beside it
    (`.pub`, base64 raw). Returns (public key text, public key path)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = public_key_text(key.public_key())
    pub_path = private_path.with_name(private_path.name + ".pub")
    if pub_path.exists():
        raise KeyFileError(f"{pub_path} exists already; it is not overwritten")
    write_secret(private_path, pem)
    write_private(pub_path, public + "\n", exclusive=True)
    return public, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(read_secret(path), password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def read_public_key(path: Path) -> str:
    """A public key file: base64 raw (what `centre keygen` writes) or PEM."""
    data = read_input(path, KEY_FILE, "public key file")
    if b"BEGIN PUBLIC KEY" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key")
        return public_key_text(key)
    return parse_public_key(data.decode().strip(), str(path))


def parse_public_key(text: str, where: str) -> str:
    try:
        return public_key_text(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where}: not an Ed25519 public key (32 bytes, base64)") from None


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode()


def signature_valid(public_key: str, data: bytes, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
