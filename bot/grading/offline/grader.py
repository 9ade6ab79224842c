"""The offline grader: no LLM, CPU only, calibrated against human short-answer grades.

Method (``prompt_version`` = ``offline-<params version>``), after Sultan et al. 2016 ("Fast and
easy short answer grading with high accuracy") plus key-point coverage:

1. **Clean** the answer (:func:`bot.grading.keypoints.clean_text`: Unicode folding, no zero-width or
   control characters, no HTML/``<script>``), **neutralise prompt injection** (segments that talk to
   the grader are removed before scoring, and the grade is then multiplied by ``injection_factor``),
   and **truncate** very long pastes to ``max_answer_chars`` for matching (with a note).
2. **Key points**: up to 8 informative clauses of the reference (:func:`bot.grading.keypoints.extract_key_points`,
   cached per reference). The answer is split into sentences/clauses the same way.
3. **Features** (question words are *demoted*: removed from both sides before any lexical overlap):

   * ``rec``   – IDF-weighted share of the reference's content stems found in the answer (typo-tolerant);
   * ``prec``  – IDF-weighted share of the answer's content stems found in the reference;
   * ``cos``   – MiniLM cosine of answer (length-weighted mean of its clause vectors) and reference;
   * ``cos_q`` – cosine of the answer and the question (lets the model subtract question similarity);
   * ``cos_dem`` – cosine of the embeddings of the question-demoted content words of answer and reference;
   * ``rec_plain`` – unweighted share of the reference's content stems found in the answer;
   * ``kp``    – mean key-point match, ``m_k = a·max_clause cos(point_k, clause) + (1-a)·lexical recall_k``
     (``kp_sem`` / ``kp_lex``: the two halves on their own);
   * ``len``   – answer/reference content-word ratio, capped at 1.5.

   IDF weights come from the word's rank in the ``cl100k_base`` BPE vocabulary (a neutral corpus).
4. **Score** ``= 10 · clip((z − lo) / (hi − lo), 0, 1)`` with ``z = b + Σ c_i · (f_i − μ_i) / σ_i``: a
   ridge regression fitted on the training splits of SAF and SemEval-2013 (pooled, each of SAF /
   Beetle / SciEntsBank weighted equally; features chosen by leave-one-dataset-out, scoring a subset
   by the mean and the worst held-out Pearson). ``hi`` (= median ``z`` of each training reference
   graded against itself) only stretches the scale for display; ``lo`` = 0 (a higher floor would clip
   low scores and cost agreement). Parameters live in ``bot/grading/offline/params.json``.
   All coefficients on coverage features are non-negative, so covering more never lowers the score.
5. **Guards** (caps or factors, applied after the model): an empty answer, "I don't know" or an
   answer with no content words scores 0; an answer that only repeats the question (no word outside
   it, and most of its words) is capped at ``copy_cap``; an answer sharing no content word with the
   reference and either far from every key point (cosine < ``no_overlap_sem``) or hitting none is
   capped at ``no_overlap_cap``; keyword stuffing is multiplied by ``stuffing_factor``: ≥ 8 words,
   ≥ 4 adjacent content-word pairs found in the reference, few function words (ratio below
   ``stuffing_ratio``) and under ``stuffing_order`` of those pairs keep their reference order and
   proximity (shuffled keywords keep ~10–20 %, real answers and in-order term lists 60–90 %).
   Injection segments are removed and the rest is scored, times ``injection_factor``.
6. **Claims**: key point ``k`` is ``hit`` when ``m_k ≥ hit_threshold``; ``contradicted`` when its best
   clause is well aligned (lexical recall ≥ ``contradiction_lex``, cosine ≥ ``contradiction_sem``) but
   exactly one side is negated (the score is then capped at ``contradiction_cap``, 10 = no cap:
   on the SemEval training data negation mismatch was not reliable enough to cost points);
   otherwise ``missed``. Evidence is the best-matching clause. ``criteria`` are display-only:
   correctness 3 (1 with a contradiction, 2 if the score is below 4, 0 below 2), depth from length
   and explanatory connectives ("because", "so that", "for example"…).
7. **With a rubric** (``GradeRequest.rubric``, :mod:`bot.grading.rubric`): the key points are the
   rubric's, each claim also carries a ``credit`` = clip((m − ``rubric_lo``) / (``rubric_hi`` −
   ``rubric_lo``), 0, 1) with m = ``rubric_alpha``·cosine + (1 − ``rubric_alpha``)·lexical recall, a hit is
   a credit ≥ ½, correctness is 3/2/1/0 by the answer's precision (``rubric_precision``), a bare
   keyword list (function-word ratio < ``keyword_list_ratio``) hits nothing, and the score is
   :func:`bot.grading.base.compute_score` — the LLM grader's formula, core points first — followed by
   the guards of step 5. The ridge model of step 4 is used only without a rubric (``interview eval``).
8. **The trained judge** (:mod:`bot.grading.judge`), against a rubric only: with ``judge_weight`` a point's
   credit blends in the judge's p(entails) + ½·p(partial) for (point, answer); with ``judge_answer_weight``
   that share of the score is the judge's score of (reference, answer); the result is finally read on the
   ``rubric_scale_lo`` / ``rubric_scale_hi`` scale (:meth:`OfflineGrader.rescale`). Its contradiction
   verdicts (``judge_contradiction``, ``judge_answer_contradiction``) can mark points contradicted; the
   shipped parameters leave them off (they read a negation in a right answer as a contradiction).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from math import nan
from pathlib import Path

import numpy as np

from bot.grading.base import (
    BANDS,
    DEFAULT_CONCURRENCY,
    SCORE_WEIGHTS,
    Claim,
    ClaimStatus,
    Criteria,
    Grade,
    GradeEvent,
    GradeRequest,
    compute_score,
    stream_whole,
    ungraded,
)
from bot.grading.judge import Judge, PairJudge, Verdicts
from bot.grading.keypoints import (
    clean_text,
    content_stems,
    extract_key_points,
    function_word_ratio,
    has_negation,
    normalize_text,
    split_segments,
    tokens,
    weighted_stems,
)
from bot.grading.offline.lexical import (
    demoted_text,
    has_term,
    matcher,
    order_kept,
    positions,
    short,
    weighted_recall,
)
from bot.grading.offline.params import FEATURES, OfflineParams
from bot.grading.safety import clean_answer
from bot.retrieval.embeddings import Embedder

__all__ = ["OfflineGrader"]

NAME = "offline"


_Key = tuple[str, str, tuple[str, ...]]


@dataclass
class _Ref:
    question: str
    reference: str
    points: tuple[str, ...]
    q_stems: frozenset[str]
    ref_terms: dict[str, float]  # demoted content stems → weight
    ref_all: frozenset[str]
    ref_len: int
    ref_pos: dict[str, list[int]]  # content stem → positions in the reference
    point_terms: list[dict[str, float]]
    point_neg: list[bool]
    ref_vec: np.ndarray | None  # whole-text vectors: only embedded when a feature needs them
    ref_dem_vec: np.ndarray | None
    q_vec: np.ndarray | None
    point_vecs: np.ndarray


@dataclass
class _Answer:
    text: str
    segments: list[str]
    toks: list[str]
    stems: frozenset[str]
    terms: dict[str, float]  # demoted
    content_len: int
    novel: int  # content stems not in the question
    injection: bool
    truncated: bool
    seg_tokens: list[int]
    demoted: str


@dataclass
class _Result:
    features: dict[str, float]
    point_match: list[float]
    point_best: list[int]
    point_lex_best: list[float]
    point_sem: list[float]
    point_lex: list[float]
    judged: Verdicts | None  # per key point (rows 0..k-1), then the whole reference when judged


_Prepared = tuple["_Ref | None", "_Answer | None", "np.ndarray | None", "Verdicts | None"]


_IDK = re.compile(
    r"^\W*(?:(?:sorry|honestly|um+|uh+|hmm+)\W+)*"
    r"(?:i\s+(?:really\s+)?(?:do\s*n[o']?t|dont|have\s+no|can'?t|cannot)\s+(?:know|remember|recall|idea|clue|understand)"
    r"|i(?:\s+am|'m|’m)?\s+not\s+sure|(?:i\s+)?(?:dunno|idk|no\s+idea|no\s+clue|not\s+sure|pass|skip|forgot)"
    r"|no\s+(?:answer|submission|response)|n/?a|\?+)"
    r"(?:\W+(?:sorry|really|at\s+all|the\s+answer|about|on|for|regarding|this|that|one|question|topic|it|what|is|"
    r"honestly|can|could|we|i|skip|move|next|please|maybe|later|come\s+back|to|of))*\W*$",
    re.IGNORECASE,
)
_DEPTH_CUES = re.compile(
    r"\b(because|since|therefore|thus|hence|so that|in order to|which means|this means|for example|for instance|"
    r"e\.g\.|such as|whereas|while|leads? to|causes?|results? in|prevents?|allows?|helps?)\b",
    re.IGNORECASE,
)


class OfflineGrader:
    """Embedding + alignment grader with a tiny learned model. Never raises from ``grade``."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        params_path: Path | None = None,
        params: OfflineParams | None = None,
        judge: PairJudge | None = None,
    ) -> None:
        """``params`` (e.g. unfitted ones while refitting) or else the file ``params_path`` (default
        ``params.json``; a missing or bad file raises :class:`OfflineParamsError`). ``judge``: the trained
        judge (default: the committed model, loaded on first use when the parameters use it)."""
        self._embedder = embedder
        self.params = params if params is not None else OfflineParams.load(params_path)
        self._judge: PairJudge | None = judge if judge is not None else (Judge() if self.params.uses_judge else None)
        self.prompt_version = f"offline-{self.params.version}"
        self._refs: OrderedDict[tuple[str, str, tuple[str, ...], bool], _Ref] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return NAME

    # --- public API -------------------------------------------------------------------------

    def grade(self, request: GradeRequest) -> Grade:
        return self.grade_many([request])[0]

    @property
    def batched(self) -> bool:
        return True

    async def agrade(self, request: GradeRequest) -> Grade:
        return await asyncio.to_thread(self.grade, request)

    def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        """The grade in one piece: there is no feedback text to stream before it."""
        return stream_whole(self, request)

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        """:meth:`grade_many` in a worker thread (``concurrency`` is moot: there is no model call)."""
        return await asyncio.to_thread(self.grade_many, requests)

    def grade_many(self, requests: Sequence[GradeRequest]) -> list[Grade]:
        """Grade many answers with one batched embedding call. One result per request, never raises:
        when the batch fails, each answer is graded alone so one bad answer costs only its own grade."""
        try:
            return self._grade_batch(requests)
        except Exception:
            return [self._safe_one(r) for r in requests]

    def feature_matrix(self, requests: Sequence[GradeRequest]) -> np.ndarray:
        """Raw features (columns in :data:`FEATURES` order) for calibration; NaN rows when not gradable."""
        out = np.full((len(requests), len(FEATURES)), np.nan)
        prepared = self._prepare(requests, all_features=True)
        for i, (ref, ans, vecs, judged) in enumerate(prepared):
            if ref is not None and ans is not None and vecs is not None:
                res = self._features(ref, ans, vecs, judged)
                out[i] = [res.features[f] for f in FEATURES]
        return out

    # --- internals --------------------------------------------------------------------------

    def _safe_one(self, request: GradeRequest) -> Grade:
        try:
            return self._grade_batch([request])[0]
        except Exception as exc:  # pragma: no cover - defensive
            return ungraded(
                f"offline grader failed: {type(exc).__name__}", grader=NAME, prompt_version=self.prompt_version
            )

    def _reference_text(self, request: GradeRequest) -> tuple[str, bool]:
        ref = clean_text(request.reference or "")
        if content_stems(ref):
            return ref, False
        passages = [clean_text(p)[:800] for p in request.passages if p and p.strip()]
        passages = [p for p in passages if content_stems(p)][:3]
        return "\n".join(passages), True

    def _get_refs(self, pairs: list[_Key], *, full: bool) -> dict[_Key, _Ref]:
        """``pairs``: (question, reference, the rubric's point texts or ``()`` to extract key points)."""
        out: dict[_Key, _Ref] = {}
        missing: list[_Key] = []
        keys = [(q, r, pts, full) for q, r, pts in pairs]
        with self._lock:
            for key in keys:
                pair = (key[0], key[1], key[2])
                if pair in out:
                    continue
                hit = self._refs.get(key) or (None if full else self._refs.get((key[0], key[1], key[2], True)))
                if hit is not None:
                    out[pair] = hit
                elif pair not in missing:
                    missing.append(pair)
        if not missing:
            return out
        texts: list[str] = []
        plans: list[tuple[_Key, tuple[str, ...], int]] = []
        for pair in missing:
            question, reference, given = pair
            points = given or extract_key_points(reference, question) or (reference[:400],)
            plans.append((pair, points, len(texts)))
            if full:
                texts.extend([reference[:2000], question or " ", demoted_text(reference, question)])
            texts.extend(points)
        vecs = np.asarray(self._embedder.embed(texts), dtype=np.float32)
        for pair, points, start in plans:
            question, reference, _ = pair
            q_stems = frozenset(content_stems(question))
            all_terms = weighted_stems(reference)
            demoted = {t: w for t, w in all_terms.items() if t not in q_stems} or all_terms
            point_terms = []
            for p in points:
                pt = weighted_stems(p)
                point_terms.append({t: w for t, w in pt.items() if t not in q_stems} or pt)
            ref = _Ref(
                question=question,
                reference=reference,
                points=points,
                q_stems=q_stems,
                ref_terms=demoted,
                ref_all=frozenset(all_terms),
                ref_len=max(1, sum(1 for s in content_stems(reference) if s not in q_stems)),
                ref_pos=positions(content_stems(reference)),
                point_terms=point_terms,
                point_neg=[has_negation(tokens(p)) for p in points],
                ref_vec=vecs[start] if full else None,
                q_vec=vecs[start + 1] if full else None,
                ref_dem_vec=vecs[start + 2] if full else None,
                point_vecs=vecs[start + 3 * full : start + 3 * full + len(points)],
            )
            out[pair] = ref
        with self._lock:
            for pair in missing:
                key = (pair[0], pair[1], pair[2], full)
                self._refs[key] = out[pair]
                self._refs.move_to_end(key)
            while len(self._refs) > 256:
                self._refs.popitem(last=False)
        return out

    def _answer(self, raw: str, q_stems: frozenset[str], question: str) -> _Answer:
        p = self.params
        text = normalize_text(raw[: p.max_answer_chars * 4])  # never walk a huge paste character by character
        truncated = len(raw) > p.max_answer_chars * 4 or len(text) > p.max_answer_chars
        if truncated:
            text = text[: p.max_answer_chars]
        cleaned = clean_answer(text)  # shared with the LLM grader: injected sentences and fake tags go
        text, injection = cleaned.text, bool(cleaned.injections)
        text = clean_text(text)
        segments = split_segments(text, max_words=28, min_content=1, min_words=p.min_segment_words)[: p.max_segments]
        toks = tokens(" ".join(segments))
        all_stems = content_stems(toks)
        terms = {t: w for t, w in weighted_stems(toks).items() if t not in q_stems}
        return _Answer(
            text=text,
            segments=segments,
            toks=toks,
            stems=frozenset(all_stems),
            terms=terms,
            content_len=sum(1 for s in all_stems if s not in q_stems),
            novel=len(terms),
            injection=injection,
            truncated=truncated,
            seg_tokens=[max(1, len(s.split())) for s in segments],
            demoted=demoted_text(" ".join(segments), question),
        )

    def _prepare(self, requests: Sequence[GradeRequest], *, all_features: bool = False) -> list[_Prepared]:
        """Reference data, answer data, the answer's clause vectors (+ a last row: its question-demoted
        text, when ``cos_dem`` is needed) and the judge's verdicts (one batched call for all answers)."""
        with_dem = all_features or "cos_dem" in self.params.features
        refs_text = [self._reference_text(r) for r in requests]
        keys = [
            (clean_text(r.question), ref, tuple(r.rubric.texts) if r.rubric is not None and not no_ref else ())
            for r, (ref, no_ref) in zip(requests, refs_text, strict=True)
        ]
        full = all_features or bool({"cos", "cos_q", "cos_dem"} & set(self.params.features))
        refs = self._get_refs([k for k in keys if k[1]], full=full)
        answers: list[_Answer | None] = []
        seg_texts: list[str] = []
        spans: list[tuple[int, int]] = []
        for key in keys:
            ref = refs.get(key)
            if ref is None:
                answers.append(None)
                spans.append((0, 0))
                continue
            prepared = self._answer(requests[len(answers)].answer_with_appeal, ref.q_stems, ref.question)
            answers.append(prepared)
            start = len(seg_texts)
            if prepared.stems:
                seg_texts.extend(prepared.segments)
                if with_dem:
                    seg_texts.append(prepared.demoted)
            spans.append((start, len(seg_texts)))
        vecs = np.asarray(self._embedder.embed(seg_texts), dtype=np.float32) if seg_texts else None
        judged = self._judged([(refs.get(k), a, bool(k[2])) for k, a in zip(keys, answers, strict=True)], all_features)
        out: list[_Prepared] = []
        for key, ans, (a, b), verdicts in zip(keys, answers, spans, judged, strict=True):
            ref = refs.get(key)
            seg_vecs = vecs[a:b] if vecs is not None and b > a else None
            out.append((ref, ans, seg_vecs, verdicts))
        return out

    def _judged(
        self, items: list[tuple[_Ref | None, _Answer | None, bool]], all_features: bool
    ) -> list[Verdicts | None]:
        """The judge, in one batched call: on (key point, answer) for every point of a request with a rubric
        when the parameters use it per point, then on (reference, answer) when they use it on the whole."""
        if self._judge is None:
            return [None] * len(items)
        p = self.params
        pairs: list[tuple[str, str]] = []
        spans: list[tuple[int, int, int]] = []
        for ref, ans, graded in items:
            start = len(pairs)
            points = 0
            if ref is not None and ans is not None and ans.stems:
                if graded and p.judges_points:
                    pairs.extend((point, ans.text) for point in ref.points)
                    points = len(ref.points)
                # the whole answer: for the j_ref feature, or against a rubric when the parameters use it
                if all_features or "j_ref" in p.features or (graded and p.judges_answer):
                    pairs.append((ref.reference, ans.text))
            spans.append((start, points, len(pairs)))
        if not pairs:
            return [None] * len(items)
        verdicts = self._judge.judge(pairs)
        return [Verdicts(verdicts.probs[a:b], verdicts.score[a:b], points=k) if b > a else None for a, k, b in spans]

    def _features(self, ref: _Ref, ans: _Answer, vecs: np.ndarray, judged: Verdicts | None) -> _Result:
        p = self.params
        n_seg = len(ans.segments)
        seg_vecs = vecs[:n_seg]
        dem_vec = vecs[n_seg] if len(vecs) > n_seg else None
        index = matcher(ans.stems)
        weights = np.asarray(ans.seg_tokens, dtype=np.float32)[:, None]
        a_vec = (seg_vecs * weights).sum(axis=0)
        norm = float(np.linalg.norm(a_vec))
        a_vec = a_vec / norm if norm > 0 else a_vec
        rec = weighted_recall(ref.ref_terms, ans.stems, index)
        ref_index = matcher(ref.ref_all)
        prec = weighted_recall(ans.terms, ref.ref_all, ref_index) if ans.terms else 0.0
        sims = ref.point_vecs @ seg_vecs.T  # [points, segments]
        point_sem = sims.max(axis=1)
        point_best = sims.argmax(axis=1)
        point_lex = [weighted_recall(t, ans.stems, index) for t in ref.point_terms]
        point_match = [
            p.kp_alpha * float(s) + (1 - p.kp_alpha) * lx for s, lx in zip(point_sem, point_lex, strict=True)
        ]
        point_lex_best = []
        for k, best in enumerate(point_best):
            seg_stems = frozenset(content_stems(ans.segments[int(best)]))
            point_lex_best.append(weighted_recall(ref.point_terms[k], seg_stems, matcher(seg_stems)))
        feats = {
            "rec": rec,
            "prec": prec,
            "cos": float(a_vec @ ref.ref_vec) if ref.ref_vec is not None else nan,
            "cos_q": float(a_vec @ ref.q_vec) if ref.q_vec is not None else nan,
            "cos_dem": (float(dem_vec @ ref.ref_dem_vec) if ans.terms else 0.0)
            if dem_vec is not None and ref.ref_dem_vec is not None
            else nan,
            "rec_plain": len({t for t in ref.ref_all if has_term(t, ans.stems, index)}) / max(1, len(ref.ref_all)),
            "kp": float(np.mean(point_match)) if point_match else 0.0,
            "kp_sem": float(np.mean(point_sem)) if len(point_sem) else 0.0,
            "kp_lex": float(np.mean(point_lex)) if point_lex else 0.0,
            "len": min(1.5, ans.content_len / ref.ref_len),
        }
        feats["j_ref"] = nan
        if judged is not None and len(judged.score) > judged.points:
            feats["j_ref"] = float(judged.score[judged.points])
        return _Result(
            feats,
            point_match,
            [int(b) for b in point_best],
            point_lex_best,
            [float(s) for s in point_sem],
            point_lex,
            judged,
        )

    def _model(self, feats: dict[str, float]) -> float:
        p = self.params
        z = p.intercept + sum(
            c * (feats[f] - m) / s for f, m, s, c in zip(p.features, p.mean, p.scale, p.coef, strict=True)
        )
        return float(min(1.0, max(0.0, (z - p.out_lo) / (p.out_hi - p.out_lo))))

    def _grade_batch(self, requests: Sequence[GradeRequest]) -> list[Grade]:
        prepared = self._prepare(requests)
        grades: list[Grade] = []
        for request, (ref, ans, vecs, judged) in zip(requests, prepared, strict=True):
            try:
                grades.append(self._finish(request, ref, ans, vecs, judged))
            except Exception as exc:
                grades.append(
                    ungraded(
                        f"offline grader failed: {type(exc).__name__}", grader=NAME, prompt_version=self.prompt_version
                    )
                )
        return grades

    def _zero(self, feedback: str, *, without_ref: bool, notes: list[str]) -> Grade:
        return Grade(
            score=0.0,
            feedback=feedback,
            criteria=Criteria(correctness=0, depth=0),
            graded_without_reference=without_ref,
            grader=NAME,
            prompt_version=self.prompt_version,
            notes=notes,
        )

    def _finish(
        self,
        request: GradeRequest,
        ref: _Ref | None,
        ans: _Answer | None,
        vecs: np.ndarray | None,
        judged: Verdicts | None,
    ) -> Grade:
        p = self.params
        if ref is None or ans is None:
            return ungraded(
                "no reference answer in your notes and no related passages",
                grader=NAME,
                prompt_version=self.prompt_version,
            )
        without_ref = not content_stems(clean_text(request.reference or ""))
        notes: list[str] = []
        if without_ref:
            notes.append("Your notes have no answer for this card; compared with related passages instead.")
        if ans.truncated:
            notes.append(f"Answer trimmed to its first {p.max_answer_chars} characters for grading.")
        if ans.injection:
            notes.append("Ignored text addressed to the grader (instructions, fake scores or tags).")
        prefix = "No reference answer in your notes: graded against related passages only. " if without_ref else ""
        if not ans.stems or vecs is None:
            return self._zero(prefix + "No answer given.", without_ref=without_ref, notes=notes)
        if len(ans.toks) <= 14 and _IDK.match(ans.text):
            return self._zero(
                prefix + "You said you don't know — that's fine in practice; review the note and try again.",
                without_ref=without_ref,
                notes=notes,
            )
        res = self._features(ref, ans, vecs, judged)
        fw_ratio = function_word_ratio(ans.toks)
        pairs, kept = order_kept(content_stems(ans.toks), ref.ref_pos)
        stuffing = (
            len(ans.toks) >= 8
            and pairs >= 4
            and (
                (fw_ratio < p.stuffing_ratio and kept < p.stuffing_order)
                or (fw_ratio < p.stuffing_ratio / 3 and kept < 0.5)
            )
        )
        rubric = request.rubric if not without_ref else None
        if rubric is not None and len(ans.toks) >= 6 and fw_ratio < p.keyword_list_ratio:
            stuffing = True  # a bare keyword list states no key point, in any order
        claims = self._claims(ref, ans, res, stuffing=stuffing, graded=rubric is not None)
        contradicted = [c for c in claims if c.status is ClaimStatus.CONTRADICTED]
        depth = 0
        if len(ans.toks) >= 8 and not stuffing:
            depth = 2 if len(ans.toks) >= 25 and _DEPTH_CUES.search(ans.text) else 1
        if rubric is not None:
            claims = [
                c.model_copy(update={"label": k.label, "weight": k.weight})
                for c, k in zip(claims, rubric.points, strict=True)
            ]
            criteria = Criteria(correctness=self._rubric_correctness(claims, res), depth=depth)
            score = compute_score(claims, criteria)
            whole = res.features["j_ref"]
            if p.judge_answer_weight > 0 and not math.isnan(whole) and not stuffing:  # nan: not judged
                score = (1 - p.judge_answer_weight) * score + p.judge_answer_weight * 10 * whole
                if contradicted:
                    score = min(score, SCORE_WEIGHTS.contradiction_cap)
        else:
            score = 10.0 * self._model(res.features)
        if ans.novel == 0 and len(ans.stems & ref.q_stems) >= max(1.0, 0.6 * len(ref.q_stems)):
            score = min(score, p.copy_cap)
        far = max(res.point_sem, default=0.0) < p.no_overlap_sem
        if res.features["rec_plain"] == 0 and (
            far or (rubric is None and max(res.point_match, default=0.0) < p.hit_threshold)
        ):
            score = min(score, p.no_overlap_cap)
        if stuffing:
            score *= p.stuffing_factor
        if ans.injection:
            score *= p.injection_factor
        score = round(min(10.0, max(0.0, score)), 1)
        if contradicted:
            score = min(score, p.contradiction_cap)
        if rubric is not None:
            score = self.rescale(score, contradicted=bool(contradicted))
        if rubric is None:
            correctness = 1 if contradicted else (3 if score >= BANDS.partial else 2 if score >= BANDS.weak else 0)
            criteria = Criteria(correctness=correctness, depth=depth)
        feedback = prefix + self._feedback(claims, stuffing=stuffing, score=score)
        return Grade(
            score=score,
            claims=claims,
            criteria=criteria,
            misconceptions=[
                f"You wrote “{short(c.evidence, 120)}”, but the notes say “{short(c.point, 120)}”."
                for c in contradicted
            ],
            feedback=feedback,
            graded_without_reference=without_ref,
            grader=NAME,
            prompt_version=self.prompt_version,
            notes=notes,
        )

    def rescale(self, score: float, *, contradicted: bool) -> float:
        """A rubric-graded score on the scale of ``rubric_scale_lo`` / ``rubric_scale_hi`` (see
        :class:`OfflineParams`); a contradicted answer stays within the contradiction caps."""
        p = self.params
        lo, hi = p.rubric_scale_lo, p.rubric_scale_hi
        if (lo, hi) == (0.0, 1.0):
            return score
        scaled = round(10 * min(1.0, max(0.0, (score / 10 - lo) / (hi - lo))), 1)
        return min(scaled, p.contradiction_cap, SCORE_WEIGHTS.contradiction_cap) if contradicted else scaled

    def _rubric_correctness(self, claims: Sequence[Claim], res: _Result) -> int:
        """Against a rubric: 1 with a contradiction, else 3/2/1/0 by the answer's precision (the share of its
        content words found in the note: a confident misconception brings in words the note never uses)."""
        if any(c.status is ClaimStatus.CONTRADICTED for c in claims):
            return 1
        levels = self.params.rubric_precision
        prec = res.features["prec"]
        return next((3 - i for i, floor in enumerate(levels) if prec >= floor), 0)

    def _claims(self, ref: _Ref, ans: _Answer, res: _Result, *, stuffing: bool, graded: bool) -> list[Claim]:
        """Each key point hit, missed or contradicted, with the answer's best-matching words as evidence.
        ``graded`` (a rubric): each claim also gets a credit, and a hit is a credit of at least one half."""
        p = self.params
        claims: list[Claim] = []
        whole_says = False  # the judge: the answer as a whole contradicts the reference
        if res.judged is not None and len(res.judged.score) > res.judged.points and not stuffing:
            p_con_all = float(res.judged.of("contradicts")[res.judged.points])
            p_ent_all = float(res.judged.of("entails")[res.judged.points])
            whole_says = p_con_all >= p.judge_answer_contradiction and p_con_all > p_ent_all
        nearest = int(np.argmax(res.point_sem)) if whole_says and len(res.point_sem) else -1
        for k, point in enumerate(ref.points):
            credit: float | None = None
            judged = res.judged if res.judged is not None and res.judged.points else None
            p_ent = float(judged.of("entails")[k]) if judged is not None else 0.0
            p_con = float(judged.of("contradicts")[k]) if judged is not None else 0.0
            if graded:
                m = p.rubric_alpha * res.point_sem[k] + (1 - p.rubric_alpha) * res.point_lex[k]
                credit = min(1.0, max(0.0, (m - p.rubric_lo) / (p.rubric_hi - p.rubric_lo)))
                if judged is not None and p.judge_weight > 0:
                    verdict = p_ent + 0.5 * float(judged.of("partial")[k])
                    credit = p.judge_weight * verdict + (1 - p.judge_weight) * credit
                credit = 0.0 if stuffing else credit
            best = res.point_best[k]
            evidence = short(ans.segments[best], 200)
            seg_neg = has_negation(tokens(ans.segments[best]))
            aligned = res.point_lex_best[k] >= p.contradiction_lex and res.point_sem[k] >= p.contradiction_sem
            judge_says = judged is not None and p_con >= p.judge_contradiction and p_con > p_ent and not stuffing
            if judge_says or k == nearest or (aligned and seg_neg != ref.point_neg[k]):
                status = ClaimStatus.CONTRADICTED
            elif (credit >= 0.5 if credit is not None else res.point_match[k] >= p.hit_threshold) and not stuffing:
                status = ClaimStatus.HIT
            else:
                status = ClaimStatus.MISSED
                if (credit < 0.25) if credit is not None else res.point_match[k] < p.hit_threshold * 0.8:
                    evidence = ""
            claims.append(
                Claim(
                    point=short(point, 300),
                    status=status,
                    evidence=evidence,
                    credit=None if credit is None else round(credit, 2),
                )
            )
        return claims

    @staticmethod
    def _feedback(claims: list[Claim], *, stuffing: bool, score: float) -> str:
        def name(c: Claim) -> str:  # a rubric point by its label, else its words
            return c.label or short(c.point, 70).rstrip(".;: ")

        hits = [name(c) for c in claims if c.status is ClaimStatus.HIT]
        missed = [name(c) for c in claims if c.status is ClaimStatus.MISSED]
        parts: list[str] = []
        if stuffing:
            parts.append("This reads like a list of keywords: explain in full sentences how the ideas connect.")
        if hits:
            parts.append("You covered: " + "; ".join(hits) + ".")
        if missed:
            shown = missed[:3]
            more = f" (+{len(missed) - 3} more)" if len(missed) > 3 else ""
            parts.append("You missed: " + "; ".join(shown) + more + ".")
        if any(c.status is ClaimStatus.CONTRADICTED for c in claims):
            parts.append("Part of your answer contradicts the notes — see misconceptions.")
        if not hits and score < BANDS.weak:
            parts.insert(0, "Your answer doesn't match the key points of the reference yet.")
        return " ".join(parts)
