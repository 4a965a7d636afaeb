"""Profile prompts: how a generator is asked to write a user's profile, one style per module."""
