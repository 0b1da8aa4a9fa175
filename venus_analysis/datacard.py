"""A Markdown data card, in the Hugging Face dataset-card layout, filled from an analysis.

:func:`data_card` takes the JSON-safe ``results`` of :func:`analysis.analyze` (or the
``stats``/``cues``/``bias`` dicts read back from an analysis folder, as ``{"stats": ...,
"cues": ..., "bias": ...}``) and writes YAML front matter plus the sections of
:data:`SECTIONS`. Every number in the card comes from ``results`` or, where marked
"paper", from Kim, Chung et al., ACL 2025; what the results lack (no clusters, no
sentiment, nothing flagged) is said in the card instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import json

from . import __version__, bias, schema, sentiment

SECTIONS = (
    "Dataset Details", "Uses", "Dataset Structure", "Dataset Creation", "Personal and Sensitive Information",
    "Bias, Risks, and Limitations", "Recommendations", "Known Limitations", "Citation", "How This Card Was Made",
)  # fmt: skip
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"))  # fmt: skip
MAX_FLAGGED_ROWS = 30
CITATION = """@inproceedings{kim2025speaking,
  title         = {Speaking Beyond Language: A Large-Scale Multimodal Dataset for Learning
                   Nonverbal Cues from Video-Grounded Dialogues},
  author        = {Kim, Youngmin and Chung, Jiwan and others},
  booktitle     = {Proceedings of the 63rd Annual Meeting of the Association for
                   Computational Linguistics (ACL)},
  year          = {2025},
  eprint        = {2506.00958},
  archivePrefix = {arXiv}
}"""
SYNTHETIC_CARD = "data_cards/synthetic_venus.md"
VENUS_CARD = "data_cards/venus.md"


def size_category(n: int | None) -> str:
    """The Hugging Face ``size_categories`` value of ``n`` rows (segments)."""
    if n is None:
        return "unknown"
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "n>10M"


def _num(x, spec: str = ".2f") -> str:
    """A number formatted with ``spec``; None (a NaN in the JSON results) as "n/a"."""
    return "n/a" if x is None else format(x, spec)


def _pct(x, digits: int = 1) -> str:
    """A share as a percentage with a space before the sign ("12.3 %"); None as "n/a"."""
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def _signed(x, digits: int = 1) -> str:
    """A relative difference as a signed percentage ("+12.3 %"); None as "n/a"."""
    return "n/a" if x is None else f"{100 * x:+.{digits}f} %"


def _int(x) -> str:
    return "n/a" if x is None else f"{int(x):,}"


def _md(text) -> str:
    """Data text made safe for a Markdown table cell (pipes, newlines, angle brackets)."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _front_matter(name: str, license: str, n_segments: int | None, synthetic: bool) -> str:
    tags = ["nonverbal-communication", "conversation", "multimodal", "gesture", "facial-expression", "flame",
            "smpl-x", "podcast"] + (["synthetic"] if synthetic else [])  # fmt: skip
    lines = ["---", f"pretty_name: {json.dumps(name)}", f"license: {json.dumps(license)}",
             "task_categories:", "- video-text-to-text", "- text-generation", "language:", "- en",
             "tags:", *[f"- {t}" for t in tags], "size_categories:", f"- {json.dumps(size_category(n_segments))}", "---"]  # fmt: skip
    return "\n".join(lines)


def _details(name, res, synthetic, source) -> str:
    st = (res.get("stats") or {}).get("all") or {}
    cue = res.get("cues") or {}
    splits = (res.get("stats") or {}).get("splits") or {}
    if synthetic:
        what = (f"**This card describes synthetic data.** `{_md(name)}` was made by venus-mars' generator "
                "(`venus_analysis.synthetic`) in the format of VENUS: no real people, no video, nothing derived "
                f"from video. What the generator planted (cue-word rules, channel effects) is documented in "
                f"`{SYNTHETIC_CARD}`; this card reports what the analysis found, so the two can be compared.")  # fmt: skip
    else:
        what = ("Two-person English podcast conversations from YouTube in the VENUS format: ten-minute segments "
                "with word-level transcripts and per-frame face (FLAME) and body (SMPL-X) parameters of the "
                f"active speaker. The paper's own description is drafted in `{VENUS_CARD}`.")  # fmt: skip
    rows = "\n".join(f"| {_md(sp)} | {_int(s.get('segments'))} | {_int(s.get('turns'))} | {_int(s.get('sentences'))} | "
                     f"{_int(s.get('words'))} | {_num(s.get('speech_hours'))} | {_int(s.get('face_frames'))} |"
                     for sp, s in [*splits.items(), ("all", st)] if s)  # fmt: skip
    clusters = cue.get("clusters") or {}
    cl = "; ".join(f"{p}: {d['n_clusters']} clusters of {_int(d.get('n'))} sampled frames ({_pct(d.get('noise_share'), 0)} noise)"
                   if "n_clusters" in d else f"{p}: not clustered ({_md(d.get('error', 'no result'))})"
                   for p, d in clusters.items())  # fmt: skip
    return f"""## Dataset Details

{what}

- **Source analysed**: `{_md(source)}`
- **Unique words** (lowercased, punctuation stripped): {_int(st.get('unique_words'))}
- **Turns per segment** (mean): {_num(st.get('turns_per_dialogue_mean'))}; **seconds per utterance** (mean / median): {_num(st.get('seconds_per_utterance_mean'))} / {_num(st.get('seconds_per_utterance_median'))}
- **Frame coverage** (stored face frames over speech time x 25 fps): {_pct(st.get('frame_coverage'))}
- **Utterances removed as harmful**: {_int(st.get('harmful'))}
- **Minutes of speech with frames**: {_num(cue.get('speech_minutes'), '.1f')}
- **Face and body clusters** (t-SNE + DBSCAN; the paper found 7 face and 8 body clusters): {cl or 'not computed for this card'}

| split | segments | turns | sentences | words | speech hours | face frames |
|---|---|---|---|---|---|---|
{rows}
"""


def _uses(synthetic) -> str:
    extra = ("- Checking that an analysis or a model recovers a known, planted truth.\n" if synthetic else "")
    return f"""## Uses

### Direct use
- Learning how conversational speech and nonverbal behaviour line up in time (teaching, notebooks).
- Training and evaluating small models that read and write face and body tokens between words.
- Measuring the dataset itself: its balance, its coverage and the quality of its pseudo-labels.
{extra}
### Out-of-scope use
- Identifying, tracking or profiling the people in the videos; inferring their age, gender, ethnicity,
  health or emotions as facts about them.
- Treating the face and body parameters as measurements of behaviour: they are estimator outputs.
- Drawing conclusions about nonverbal behaviour in general: podcasts are one genre of seated talk.
{"- Any claim about human behaviour at all: the synthetic rules are a teaching device." if synthetic else ""}
"""


def _structure() -> str:
    f = schema.FACE_LAYOUT
    return f"""## Dataset Structure

One row is one segment (600 s in VENUS). Columns (`venus_analysis.schema`): required
{", ".join(f"`{c}`" for c in schema.REQUIRED_COLUMNS)}; optional {", ".join(f"`{c}`" for c in schema.OPTIONAL_COLUMNS)}
(the real data's names for the optional ones are unverified).

- `{schema.CONVERSATION}`: per utterance `utterance_id`, `speaker` (0/1, order within the segment), `text`,
  `start_time`, `end_time` (s from the segment start) and `words` (`word`, `start_time`, `end_time`).
- `{schema.FACE}` and `{schema.BODY}`: one entry per stored frame: `utt_id`, `frame` (a string whose first
  `_`-separated field is the frame index at {schema.FPS} fps) and `features`.
- `{schema.HARMFUL}`: ids of utterances removed from the conversation.

Per-frame layouts (end exclusive):

| track | floats | layout |
|---|---|---|
| face (FLAME via EMOCA) | {f.length} | expression [{f.expression.start}:{f.expression.stop}], head rotation [{f.head_rotation.start}:{f.head_rotation.stop}], jaw [{f.jaw.start}:{f.jaw.stop}], shape [{f.shape.start}:{f.shape.stop}] (older variant: {schema.FACE_LAYOUT_LEGACY.length}, no head rotation) |
| body (SMPL-X via OSX) | {schema.BODY_DIM} | root [0:3], 21 body joints [3:66], left hand [66:111], right hand [111:156], jaw [156:159], betas [159:169], expression [169:179] |
| face tokenizer input | {schema.FACE_TOKEN_DIM} | expression 50 + jaw 3 |
| body tokenizer input | {schema.BODY_TOKEN_DIM} | body[{schema.BODY_TOKEN_SLICE.start}:{schema.BODY_TOKEN_SLICE.stop}]: 9 upper-body joints and both hands |
"""


def _creation(synthetic) -> str:
    if synthetic:
        src = ("Generated from a seed by `venus_analysis.synthetic`: channels with Zipf-like sizes, videos, "
               "alternating turns from a small grammar, word times, and face and body motion made through the "
               f"package's own skeleton. The full recipe is in `{SYNTHETIC_CARD}`.")  # fmt: skip
        ann = ("No estimator was run. The synthetic rows imitate what the real pipeline produces (WhisperX word "
               "times, EMOCA face and OSX body parameters with added estimator jitter and frame gaps, a WildGuard-"
               "style list of removed utterances) so that the same code runs on both.")  # fmt: skip
    else:
        src = ("English YouTube podcasts with two speakers (paper: 869 channels, 27,128 videos). The first 60 s "
               "of each video are skipped, the rest cut into 600 s segments at 25 fps; speaker diarization keeps "
               "segments with exactly two speakers.")  # fmt: skip
        ann = ("All annotations are **pseudo-labels** from models, not human labels: WhisperX large-v3 "
               "transcripts with word times (English only); WildGuard safety flags (flagged utterances removed, "
               "videos with over 3 minutes of flagged speech dropped); active speaker detection and cropping; "
               "EMOCA-v2 for FLAME face parameters and OSX for SMPL-X body parameters, per frame of the active "
               "speaker. Their errors (jitter, occlusion, crops, identity drift) are part of the data.")  # fmt: skip
    return f"## Dataset Creation\n\n### Source data\n{src}\n\n### Annotations\n{ann}\n"


def _personal(synthetic) -> str:
    if synthetic:
        body = ("None: every value is drawn from a seed. Video and channel ids are random strings that only look "
                "like YouTube's.")  # fmt: skip
    else:
        body = ("The rows describe real, identifiable people: video ids point to public videos, transcripts hold "
                "their words, and FLAME shape and SMPL-X betas describe their faces and bodies. There is no consent "
                "metadata. Treat the data as personal data of public speakers: no re-identification, no profiling.")  # fmt: skip
    return f"## Personal and Sensitive Information\n\n{body} {bias.NOT_IN_VENUS}\n"


def _flagged_lines(audit) -> tuple[str, list[dict]]:
    flagged = audit.get("flagged") or []
    min_effect = (audit.get("settings") or {}).get("min_effect", 0.2)
    if not flagged:
        return (f"No group was flagged: no bootstrap interval lay entirely beyond +-{_pct(min_effect, 0)}.", [])
    rows = sorted(flagged, key=lambda r: -abs(r.get("rel_diff") or 0))
    table = "\n".join(
        f"| {_md(r['group_by'])} | {_md(r['group'])} | {_md(r['measure'])} | {_signed(r.get('rel_diff'))} | "
        f"[{_signed(r.get('ci_low'))}, {_signed(r.get('ci_high'))}] | {_num(r.get('level'), '.4f')} | "
        f"{'yes' if r.get('confounded_by_quality') else ('quality measure' if r['measure'] in bias.QUALITY_MEASURES else 'no')} |"
        for r in rows[:MAX_FLAGGED_ROWS])  # fmt: skip
    more = f"\n\n{len(rows) - MAX_FLAGGED_ROWS} more flagged records are in `bias.json`." if len(rows) > MAX_FLAGGED_ROWS else ""
    return (f"{len(flagged)} group differences are flagged (the whole interval beyond +-{_pct(min_effect, 0)}):\n\n"
            "| grouping | group | measure | difference | interval | level | confounded by quality |\n"
            f"|---|---|---|---|---|---|---|\n{table}{more}", rows)  # fmt: skip


def _bias_section(res) -> str:
    audit = res.get("bias") or {}
    rep = audit.get("representation") or {}
    ch, tt = rep.get("channels") or {}, rep.get("talk_time") or {}
    us, tr = rep.get("utterance_seconds") or {}, rep.get("truncation") or {}
    settings = audit.get("settings") or {}
    lines = ["## Bias, Risks, and Limitations", ""]
    lines.append(f"- **Channels**: {_int(ch.get('n'))} channels; Gini coefficient of segments per channel "
                 f"{_num(ch.get('gini'), '.3f')}; the largest channel holds {_pct(ch.get('top1_share'))} of the segments, "
                 f"the top 5 {_pct(ch.get('top5_share'))}, the top 10 {_pct(ch.get('top10_share'))}.")  # fmt: skip
    topics = {k: v for k, v in (rep.get("topics") or {}).items() if k != "unknown"}
    if topics:
        top = ", ".join(f"{_md(k)} {_pct(v)}" for k, v in list(topics.items())[:5])
        lines.append(f"- **Topics** (from titles; share of segments): {top}. The paper's most frequent title topics: "
                     "interview 6.64 %, life 4.51 %, recap 4.3 %.")  # fmt: skip
    else:
        lines.append("- **Topics**: not available (the rows carry no titles).")
    lines.append(f"- **Talk-time balance**: speaker 0 holds {_pct(tt.get('speaker0_share_mean'))} of a segment's talk on "
                 f"average (s.d. {_pct(tt.get('speaker0_share_sd'))}); in {_pct(tt.get('share_segments_one_speaker_over_70pct'))} "
                 "of segments one speaker has more than 70 %.")  # fmt: skip
    lines.append(f"- **Truncation by the 512-frame window** ({_num(us.get('window_seconds'), '.2f')} s): "
                 f"{_pct(tr.get('share_utterances_cut'))} of utterances with frames are longer and lose "
                 f"{_pct(tr.get('share_frames_cut_in_cut_utterances'))} of their frames ({_pct(tr.get('share_frames_cut'))} of "
                 f"all frames). Median utterance {_num(us.get('q50'), '.1f')} s, 90th percentile {_num(us.get('q90'), '.1f')} s; "
                 "the paper reports 55.3 s per utterance on average.")  # fmt: skip
    sent = (res.get("cues") or {}).get("sentiment") or []
    if sent:
        pairs = ", ".join(f"{r['sentiment']} {_pct(r.get('share'))} (paper {_pct(r.get('paper_share', sentiment.PAPER_SHARES.get(r['sentiment'])), 2)})"
                          for r in sent)  # fmt: skip
        lines.append(f"- **Sentence sentiment** (VADER, {_int(sum(r.get('n') or 0 for r in sent))} sentences): {pairs}.")
    else:
        lines.append("- **Sentence sentiment**: not measured (no word lists in the results).")
    text, flagged = _flagged_lines(audit)
    lines += ["", "### Differences between groups (bias audit)", "",
              f"Each group is compared with the rest of the data, with a percentile bootstrap interval over "
              f"{settings.get('n_boot', 'n/a')} resamples of whole units ({_md(str(settings.get('cluster', 'videos')))}), "
              f"Bonferroni-adjusted over the groups of each grouping (nominal level {settings.get('level', 'n/a')}).",
              "", text]  # fmt: skip
    untested = sorted({f"{r['group_by']}={r['group']}" for k in ("behaviour", "quality")
                       for r in audit.get(k) or [] if not r.get("tested") and r.get("group_by") != "sentiment"})
    if untested:
        lines += ["", f"**Not tested**: {len(untested)} groups have fewer than {settings.get('min_clusters', 5)} "
                      "resampling units (or only rare cue events), so no interval is given for them; a difference "
                      "there cannot be told from chance with this data."]  # fmt: skip
    confounded = [r for r in flagged if r.get("confounded_by_quality")]
    beh = [r for r in flagged if r["measure"] not in bias.QUALITY_MEASURES]
    if confounded:
        groups = sorted({f"{r['group_by']}={r['group']}" for r in confounded})
        lines += ["", f"**Confounded by quality**: {len(confounded)} of the {len(beh)} flagged behaviour differences are "
                      f"in groups whose extraction quality is flagged too ({_md(', '.join(groups))}); they may be "
                      "estimator artefacts rather than behaviour."]  # fmt: skip
    elif flagged:
        lines += ["", "**Confounded by quality**: none of the flagged behaviour differences is in a group whose "
                      "extraction quality is flagged."]  # fmt: skip
    if audit.get("groups_not_audited"):
        lines += ["", f"Groupings not audited (a single value): {_md(', '.join(audit['groups_not_audited']))}."]
    return "\n".join(lines) + "\n"


def _recommendations() -> str:
    return """## Recommendations

- Report results per channel (and per topic where titles exist), not only pooled: a few channels
  dominate, and a pooled number mostly describes them.
- Before reading a group difference as behaviour, check the group's jitter and frame coverage.
- Resample or weight by video when estimating uncertainty: utterances of one video share people and camera.
- Measure how much of each utterance a fixed window keeps before training on windows.
- Do not use the data to infer demographic attributes; audit such groups only with separately collected labels.
"""


def _flag_summary(flagged: list[dict]) -> str:
    if not flagged:
        return "- The bias audit flagged no group difference."
    big = max(flagged, key=lambda r: abs(r.get("rel_diff") or 0))
    return (f"- The bias audit flagged {len(flagged)} group differences; the largest: {_md(big['group_by'])}="
            f"{_md(big['group'])}, {_md(big['measure'])} {_signed(big.get('rel_diff'))}.")


def _known_limitations(res, synthetic) -> str:
    audit = res.get("bias") or {}
    flagged = audit.get("flagged") or []
    st = (res.get("stats") or {}).get("all") or {}
    lines = ["## Known Limitations", "", "Stated by the paper's authors:",
             "- **Genre skew**: podcasts are calm, seated conversations; strong emotions such as crying or anger are rare.",
             "- **Pseudo-labels**: face and body parameters come from EMOCA and OSX and carry their errors.",
             "- **Partial use**: not all of the collected data was used in the paper's experiments.",
             "- **Metrics**: the automatic metrics used may not capture what matters in nonverbal behaviour.",
             "", "Found by this analysis or by checking the paper:",
             f"- The paper's Table 2 is internally inconsistent (21 turns per dialogue stated, 12.5 from its totals); "
             f"this data has {_num(st.get('turns_per_dialogue_mean'))} turns per segment.",
             f"- The 512-frame window cuts {_pct((audit.get('representation') or {}).get('truncation', {}).get('share_utterances_cut'))} "
             "of utterances here; on real VENUS, with longer turns, far more.",
             "- Only the active speaker is tracked: listeners' reactions are not in the data.",
             _flag_summary(flagged),
             "- VENUS has no demographic labels, so fairness across age, gender or skin tone cannot be audited."]  # fmt: skip
    if synthetic:
        lines.append(f"- Synthetic data: the behaviour is planted by rules (see `{SYNTHETIC_CARD}`); utterances are "
                     "much shorter than VENUS turns and the language is repetitive.")  # fmt: skip
    return "\n".join(lines) + "\n"


def data_card(results: dict, *, dataset_name: str, synthetic: bool | None = None, license: str = "unknown",
              command: str | None = None, date: str | None = None) -> str:
    """The Markdown data card of an analysis (Hugging Face layout: YAML front matter, then
    :data:`SECTIONS`).

    ``results`` is ``Analysis.results`` (keys ``stats``, ``cues``, ``bias``, optionally
    ``meta``). ``synthetic``: whether the data is the synthetic VENUS (default: the
    results' source is "synthetic"); a synthetic card says so up front and points to
    ``data_cards/synthetic_venus.md`` for the planted truth. ``license`` goes into the
    front matter; ``command`` and ``date`` (default: rebuilt from the results' settings,
    today) into "How This Card Was Made". Missing pieces are stated, never guessed.
    """
    meta = results.get("meta") or {}
    source = meta.get("source") or (results.get("stats") or {}).get("source") or "unknown"
    if synthetic is None:
        synthetic = source == "synthetic"
    n_segments = ((results.get("stats") or {}).get("all") or {}).get("segments", meta.get("segments"))
    settings = (results.get("bias") or {}).get("settings") or {}
    if command is None:
        load = "generate_venus()" if source == "synthetic" else f"load_venus({source!r})"
        command = (f"write_analysis(analyze({load}, source={source!r}, n_boot={settings.get('n_boot', meta.get('n_boot', 1000))}, "
                   f"per_video={meta.get('per_video', 10)}, seed={settings.get('seed', meta.get('seed', 0))}), OUT_DIR)")  # fmt: skip
    date = date or _dt.date.today().isoformat()
    title = f"# Dataset Card for {dataset_name}" + (" (synthetic)" if synthetic and "synthetic" not in dataset_name.lower() else "")
    made = f"""## How This Card Was Made

Generated by `venus_analysis.datacard.data_card` from the results of `venus_analysis.analysis`:

```{"bash" if command.startswith("venus-mars") else "python"}
{command}
```

- venus-mars version: {__version__}
- date: {date}
- splits: {", ".join(meta.get("splits") or list(((results.get("stats") or {}).get("splits") or {}))) or "n/a"}
- the numbers: `stats.json`, `cues.json` and `bias.json` of the same run; paper figures credited to Kim, Chung et al. (2025).
"""
    parts = [_front_matter(dataset_name, license, n_segments, synthetic), "", title, "",
             _details(dataset_name, results, synthetic, source), _uses(synthetic), _structure(), _creation(synthetic),
             _personal(synthetic), _bias_section(results), _recommendations(), _known_limitations(results, synthetic),
             f"## Citation\n\n```bibtex\n{CITATION}\n```\n", made]  # fmt: skip
    return "\n".join(parts)
