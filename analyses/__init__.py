"""Store -> findings: vectors, decomposition, neurons, structure, diversity, steering."""
