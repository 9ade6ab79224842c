"""Practice: interview sessions, attempts, scheduling, the coach, reports."""
