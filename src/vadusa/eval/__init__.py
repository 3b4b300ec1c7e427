"""Evaluation: the Whisper judge, WER/CER, corpus quality checks."""
