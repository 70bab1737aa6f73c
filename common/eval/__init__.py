"""Shared evaluation protocols (SentEval-style STS)."""
