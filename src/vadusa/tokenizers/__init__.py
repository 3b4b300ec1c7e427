"""Speech tokens: feature extractors + quantizers behind one contract (see ``base``)."""
