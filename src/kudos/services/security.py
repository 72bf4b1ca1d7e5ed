"""Key material: generating API and secret keys, hashing them for lookup, encrypting secrets.

- API keys are looked up by an HMAC-SHA256 under the server key (deterministic, so indexable).
- Secret keys are checked against their own HMAC in constant time, and also kept encrypted
  (Fernet, key derived from the server key) because webhooks are signed with them later.
Neither appears in logs or reprs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from cryptography.fernet import Fernet


@dataclass(frozen=True)
class KeyPair:
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)


class Keyring:
    """Everything derived from the server key."""

    def __init__(self, server_key: str) -> None:
        master = server_key.encode()
        self._hash_key = hmac.new(master, b"kudos/key-hash", hashlib.sha256).digest()
        fernet_key = hmac.new(master, b"kudos/secret-encryption", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))
        self._api_hashes: dict[str, str] = {}

    def __repr__(self) -> str:
        return "Keyring(***)"

    @staticmethod
    def new_pair() -> KeyPair:
        return KeyPair(api_key=secrets.token_hex(16), secret_key=secrets.token_hex(24))

    def hash(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` for ``purpose`` ("api" or "secret"), hex."""
        message = f"{purpose}:{value}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def api_key_hash(self, api_key: str) -> str:
        """``hash("api", api_key)``, remembered for the few keys a server sees (hot path)."""
        known = self._api_hashes.get(api_key)
        if known is None:
            if len(self._api_hashes) >= 4096:
                self._api_hashes.clear()
            known = self._api_hashes[api_key] = self.hash("api", api_key)
        return known

    def check_secret(self, given: str, stored_hash: str) -> bool:
        """Constant-time comparison of a presented secret key with the stored hash."""
        return hmac.compare_digest(self.hash("secret", given), stored_hash)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
