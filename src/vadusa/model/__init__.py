"""Models: the AR transformer (and, with VADUSA, its draft heads)."""
