"""Analytic model counts (`flops`: parameters, FLOPs per token) and timing helpers (`timing`)."""
