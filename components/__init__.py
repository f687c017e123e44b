"""One ComponentResource per module; each takes a small Args dataclass."""
