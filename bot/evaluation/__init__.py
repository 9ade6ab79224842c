"""Agreement of the graders with human graders; simulated candidates; LangSmith."""
