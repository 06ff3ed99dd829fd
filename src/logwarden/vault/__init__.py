"""The vault: nothing sensitive reaches disk in plaintext."""

from logwarden.vault.envelope import Vault, canonical_ip
from logwarden.vault.keys import KeyMaterial, create_key_file, load_key_file

__all__ = ["KeyMaterial", "Vault", "canonical_ip", "create_key_file", "load_key_file"]
