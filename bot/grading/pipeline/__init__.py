"""The grader pipeline: one factory (:func:`build_grader`), tracing, the worker process."""

from bot.grading.pipeline.build import (
    build_grader,
    make_chat_model,
    make_follow_up_writer,
    make_offline_grader,
    make_rubric_book,
)

__all__ = ["build_grader", "make_chat_model", "make_follow_up_writer", "make_offline_grader", "make_rubric_book"]
