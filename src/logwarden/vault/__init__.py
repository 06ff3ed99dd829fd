"""The vault: nothing sensitive reaches disk in plaintext."""

from logwarden.vault.envelope import Vault, canonical_ip, text_commitment
from logwarden.vault.keys import KeyMaterial, create_key_file, load_key_file
from logwarden.vault.keystore import ADDRESS, TEXT, Bucket, DestroyResult, KeyStore, NewDataKey

__all__ = [
    "ADDRESS",
    "TEXT",
    "Bucket",
    "DestroyResult",
    "KeyMaterial",
    "KeyStore",
    "NewDataKey",
    "Vault",
    "canonical_ip",
    "create_key_file",
    "load_key_file",
    "text_commitment",
]
