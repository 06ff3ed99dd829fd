"""The RFC 6962 reference test data (tests/vectors/merkle_rfc6962.json), shared by the tests."""

from __future__ import annotations

import json
from pathlib import Path

from logwarden.audit.merkle import leaf_hash

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "merkle_rfc6962.json").read_text()
)
VECTOR_LEAVES = [leaf_hash(bytes.fromhex(data)) for data in VECTORS["leaves"]]
