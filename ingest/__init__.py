"""Models -> store: prompts, generation, judging, activation capture, writing."""
