"""Serving: quantized weight sizes, KV cache, largest batch, prefill/decode time, $ per token."""
