"""pandera data contracts. Every rule a row can break lives here, named, so the quarantine can cite it."""
