"""Built-in aligners (the training ones live in the lettingo-trl plugin distribution)."""
