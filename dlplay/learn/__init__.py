"""Teaching tools: trace, formulas, exercises, hints, guesses, robustness, embeddings, sequences."""
