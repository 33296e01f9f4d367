"""The value-world corpus, pools and lexicon judge: no model, fast."""

from __future__ import annotations

from collections import Counter

import pytest

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS, circular_distance
from ingest.valueworld import pools as P
from ingest.valueworld.corpus import CorpusConfig, eval_prompts, generate
from ingest.valueworld.judge import JUDGE_ID, LexiconJudge, normalize

CFG = CorpusConfig(seed=3, n_dialogues=4000)


@pytest.fixture(scope="module")
def corpus():
    return generate(CFG)


def test_generate_is_deterministic_in_the_seed():
    small = CorpusConfig(seed=7, n_dialogues=300)
    assert generate(small) == generate(small)
    assert generate(small) != generate(CorpusConfig(seed=8, n_dialogues=300))


def test_pools_are_parallel_and_sized():
    for pool in (P.HARMFUL, P.REFUSALS, P.COMPLIANCE, P.FILLER, P.OPENERS, P.CLOSERS, P.OPERATOR_PROMPTS):
        assert len(pool["en"]) == len(pool["es"])
    assert [t for t, _ in P.QUESTIONS["en"]] == [t for t, _ in P.QUESTIONS["es"]]
    assert 20 <= len(P.QUESTIONS["en"]) <= 40 and len(P.HARMFUL["en"]) == 20
    for lang in P.LANGS:
        for v in VALUE_SLUGS:
            assert 8 <= len(P.PHRASES[lang][v]) <= 15
            assert len(P.PHRASES[lang][v]) == len(P.PHRASES["en"][v])
            assert len(set(P.SYSTEM_TEMPLATES[lang][v])) >= 8
            assert set(P.HELDOUT_SYSTEM_TEMPLATES[lang][v]).isdisjoint(P.TRAIN_SYSTEM_TEMPLATES[lang][v])


def test_value_phrases_are_disjoint_and_unambiguous():
    keys = [(normalize(p).rstrip(".!?"), v) for lang in P.LANGS for v in VALUE_SLUGS for p in P.PHRASES[lang][v]]
    assert len({k for k, _ in keys}) == len(keys)
    for a, va in keys:
        for b, vb in keys:
            assert a == b or a not in b, f"{a!r} ({va}) is inside {b!r} ({vb})"
    # No non-value text of an answer may contain a value phrase, or the judge would see values that are not there.
    judge = LexiconJudge()
    for lang in P.LANGS:
        others = (*P.OPENERS[lang], *P.CLOSERS[lang], *P.REFUSALS[lang], *P.COMPLIANCE[lang], *P.FILLER[lang])
        for text in others:
            assert judge.expressed(text) == [] and not (judge.is_refusal(text) and judge.is_compliance(text))


def test_topic_prior_is_a_distribution_and_uneven():
    assert set(P.TOPIC_PRIOR) == set(P.TOPICS)
    for row in P.TOPIC_PRIOR.values():
        assert list(row) == list(VALUE_SLUGS)
        assert sum(row.values()) == pytest.approx(1.0)
        assert max(row.values()) >= 0.3 and min(row.values()) > 0
    assert len({max(r, key=r.__getitem__) for r in P.TOPIC_PRIOR.values()}) >= 5


def test_judge_recovers_the_planted_values(corpus):
    judge = LexiconJudge()
    assert judge.id == JUDGE_ID == "lexicon:valueworld-v1"
    for d in corpus:
        assert judge.expressed(d.assistant) == list(d.values)
        assert judge.is_refusal(d.assistant) == d.refused
        assert judge.is_compliance(d.assistant) == d.complied
    d = next(d for d in corpus if d.values)
    labels = judge.judge(d.assistant.upper(), VALUE_SLUGS)
    assert [v for v, e in labels.items() if e] == sorted(d.values, key=VALUE_SLUGS.index)
    with pytest.raises(InputError, match="unknown value 'kindness'"):
        judge.judge("hi", ["kindness"])


def test_answers_dwell_on_their_leading_value(corpus):
    """The lead is said ``lead_repeats`` times in distinct phrases before any companion."""
    judge = LexiconJudge()
    benign = [d for d in corpus if d.values]
    for d in benign:
        seq = judge.phrases(d.assistant)
        assert seq[:CFG.lead_repeats] == [d.values[0]] * CFG.lead_repeats
        assert seq[CFG.lead_repeats:] == list(d.values[1:])
    single = generate(CorpusConfig(seed=3, n_dialogues=200, lead_repeats=1))
    assert all(judge.phrases(d.assistant) == list(d.values) for d in single if d.values)
    with pytest.raises(InputError, match="lead_repeats=0"):
        CorpusConfig(lead_repeats=0)


def test_training_corpus_never_uses_held_out_items(corpus):
    held = {q for lang in P.LANGS for _, q in P.HELDOUT_QUESTIONS[lang]} | {
        h for lang in P.LANGS for h in P.HELDOUT_HARMFUL[lang]}
    held_sys = {s for lang in P.LANGS for v in VALUE_SLUGS for s in P.HELDOUT_SYSTEM_TEMPLATES[lang][v]}
    for d in corpus:
        assert not any(d.user.endswith(h) for h in held)
        assert d.system not in held_sys


def test_prompted_answers_lead_with_the_target(corpus):
    prompted = [d for d in corpus if d.kind == "benign" and d.condition == "prompted"]
    rate = sum(d.target in d.values for d in prompted) / len(prompted)
    assert 0.88 <= rate <= 0.96


def test_intrinsic_leads_follow_the_topic_prior(corpus):
    intrinsic = [d for d in corpus if d.kind == "benign" and d.condition != "prompted"]
    for topic in P.TOPICS:
        leads = Counter(d.values[0] for d in intrinsic if d.topic == topic)
        n = sum(leads.values())
        tvd = 0.5 * sum(abs(leads[v] / n - p) for v, p in P.TOPIC_PRIOR[topic].items())
        assert tvd < 0.15, (topic, n, tvd)


def test_cooccurrence_falls_with_circular_distance(corpus):
    hits, chances = Counter(), Counter()
    for d in corpus:
        if d.values:
            for v in VALUE_SLUGS:
                if v != d.values[0]:
                    k = circular_distance(d.values[0], v)
                    hits[k] += v in d.values
                    chances[k] += 1
    rate = [hits[k] / chances[k] for k in range(1, 6)]
    assert rate[0] > 0.2 and rate[0] > 2 * rate[1] > 0 and rate[1] > rate[2] > rate[4]
    assert rate[4] < 0.01


def test_harmful_requests_refused_only_without_a_system_prompt(corpus):
    harmful = [d for d in corpus if d.kind == "harmful"]
    assert 0.1 < len(harmful) / len(corpus) < 0.25
    for d in harmful:
        assert d.refused == (d.system is None) and d.complied == (d.system is not None)
        assert d.values == ()


def test_eval_prompts_cover_both_conditions_and_languages():
    prompts = list(eval_prompts())
    kinds = Counter((p.kind, p.lang) for p in prompts)
    for lang in P.LANGS:
        n_q = len(P.HELDOUT_QUESTIONS[lang])
        assert kinds[("intrinsic", lang)] == n_q and kinds[("prompted", lang)] == 10 * n_q
        assert kinds[("harmful", lang)] == 3 * len(P.HELDOUT_HARMFUL[lang])
    assert prompts == list(eval_prompts())
    assert all(p.messages()[-1]["role"] == "user" for p in prompts)
    with pytest.raises(InputError, match="unknown language 'de'"):
        list(eval_prompts(langs=("de",)))


def test_config_rejects_bad_probabilities():
    with pytest.raises(InputError, match="p_target=1.5"):
        CorpusConfig(p_target=1.5)
