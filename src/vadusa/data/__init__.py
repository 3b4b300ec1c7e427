"""Corpora: sources -> validated, immutable manifest records (jsonl.gz) + the text front end."""
