"""Grades: the Grade type and grader protocols, LLM and offline graders, safety, prompts."""
