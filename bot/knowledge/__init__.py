"""Notes to cards: parsing, text normalisation, topics, ingest."""
