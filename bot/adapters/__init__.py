"""Edges: the command line, the terminal, the Chainlit web app, Markdown views."""
