"""The grader pipeline: tracing, the worker process, load control."""
