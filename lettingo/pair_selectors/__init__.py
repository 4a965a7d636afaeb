"""Pair selectors: judged profiles -> DPO preference pairs (prompt, chosen, rejected)."""
