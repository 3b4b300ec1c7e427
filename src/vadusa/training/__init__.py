"""Training loops: self-supervised speech models, the unit vocoder (and later the AR model)."""
