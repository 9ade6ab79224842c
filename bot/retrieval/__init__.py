"""The card store (Chroma) and the embedding functions."""
