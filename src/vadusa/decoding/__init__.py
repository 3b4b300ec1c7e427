"""Decoding: keyed sampling, KV-cached AR decoding (and, with VADUSA, tree verification)."""
