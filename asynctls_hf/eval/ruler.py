"""RULER tasks (Hsieh et al. 2024, NVIDIA/RULER), generated locally with the model's own tokenizer.

The task definitions, templates, answer prefixes, generation lengths and metrics follow RULER's
`synthetic.yaml` and `constants.py`. What differs, so that nothing is downloaded and small word-level
tokenizers work:
- haystacks: RULER's noise paragraph ("The grass is green. The sky is blue. ...") repeated; the "essay" haystack
  is the same sentences as one flowing text (RULER uses Paul Graham's essays) with needles at RULER's 40 depths;
- word lists (needle keys, common-words lists) come from `asynctls_hf.eval.words`;
- each sample's needles are drawn first, then the largest haystack that fits is found by bisection, so a sample
  does not depend on the tokenizer except through its haystack size;
- qa_1 (SQuAD v2 dev) and qa_2 (HotpotQA dev, distractor) need their source data: `squad.json` /
  `hotpotqa.json` (RULER's file names) in `data_dir`, or the Hugging Face `datasets` copies.

`length` is RULER's: prompt tokens plus the task's generation length, at most the target.
"""

from __future__ import annotations

import functools
import json
import random
import string
import uuid
from collections.abc import Callable
from pathlib import Path

from asynctls_hf.eval.metrics import ruler_postprocess, string_match_all, string_match_part
from asynctls_hf.eval.tasks import Task, TaskUnavailable, count_tokens, format_prompt
from asynctls_hf.eval.words import ADJECTIVES, NOUNS, synthetic_words, word_list

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NOISE_SENTENCES = [sentence + "." for sentence in NOISE.rstrip(".").split(". ")]
DEPTHS = [round(100 * step / 39) for step in range(40)]  # needle depths in percent, as RULER's linspace(0, 100, 40)

TOKENS_TO_GENERATE = {"niah": 128, "variable_tracking": 30, "common_words": 120, "frequent_words": 50, "qa": 32}

NEEDLE = "One of the special magic {kind} for {key} is: {value}."
NIAH_TEMPLATE = (
    "Some special magic {kind} are hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the {kind} afterwards.\n{context}\n"
    "What are all the special magic {kind} for {query} mentioned in the provided text?"
)
NIAH_PREFIX = " The special magic {kind} for {query} mentioned in the provided text are"
NIAH_TEMPLATE_ONE = (
    "A special magic {kind} is hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the {kind} afterwards.\n{context}\n"
    "What is the special magic {kind} for {query} mentioned in the provided text?"
)
NIAH_PREFIX_ONE = " The special magic {kind} for {query} mentioned in the provided text is"
VT_TEMPLATE = (
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
    "Question: Find all variables that are assigned the value {query} in the text above."
)
VT_PREFIX = (
    " Answer: According to the chain(s) of variable assignment in the text above, {count} variables are assigned "
    "the value {query}, they are: "
)
CWE_TEMPLATE = (
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n{context}\nQuestion: What are the {count} most common words in the "
    "above list?"
)
CWE_PREFIX = " Answer: The top {count} words that appear most often in the list are:"
FWE_TEMPLATE = (
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
    "What are the three most frequently appeared words in the above coded text?"
)
FWE_PREFIX = " Answer: According to the coded text above, the three most frequently appeared words are:"
QA_TEMPLATE = (
    "Answer the question based on the given documents. Only give me the answer and do not output any other words."
    "\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. "
    "Only give me the answer and do not output any other words.\n\nQuestion: {query}"
)
QA_PREFIX = " Answer:"
QA_DOCUMENT = "Document {index}:\n{document}"

VT_EXAMPLE_TOKENS = 500  # RULER's in-context example for variable tracking, capped at a quarter of the context
CWE_FEW_SHOT_BELOW = 4096  # shorter contexts get RULER's lighter word repetitions

Build = Callable[[int], tuple[str, list[str]]]


# ---- random values -----------------------------------------------------------------------------------------


def random_value(kind: str, rng: random.Random) -> str:
    """A needle key or value: a 7-digit number, an adjective-noun word or a UUID."""
    if kind == "numbers":
        return str(rng.randint(10**6, 10**7 - 1))
    if kind == "words":
        return f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
    if kind == "uuids":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    raise ValueError(f"unknown needle type {kind!r}; expected numbers, words or uuids")


def _distinct(draw: Callable[[], str], count: int, exclude: set[str] = frozenset()) -> list[str]:
    """`count` distinct results of draw(), none in `exclude`, in the order drawn."""
    values: list[str] = []
    seen = set(exclude)
    while len(values) < count:
        value = draw()
        if value not in seen:
            seen.add(value)
            values.append(value)
    return values


# ---- haystacks ---------------------------------------------------------------------------------------------


def insert_at_fractions(units: list[str], items: list[str], fractions: list[float]) -> list[str]:
    """`units` with items[j] placed before unit int(fractions[j] * len(units)); equal positions keep item order."""
    positions = [int(fraction * len(units)) for fraction in fractions]
    result = list(units)
    # Insert from the back (the last of equal positions first) so earlier insertions do not shift later ones.
    for position, index in sorted(zip(positions, range(len(items)), strict=True), reverse=True):
        result.insert(position, items[index])
    return result


def noise_haystack(units: int) -> list[str]:
    """RULER's noise haystack: the noise paragraph `units` times (joined by newlines)."""
    return [NOISE] * units


def essay_haystack(units: int) -> list[str]:
    """The essay stand-in: `units` sentences of the noise paragraph in turn (joined by spaces)."""
    return [NOISE_SENTENCES[index % len(NOISE_SENTENCES)] for index in range(units)]


# ---- sample generation shared by all tasks -----------------------------------------------------------------


def fit_to_length(build: Build, count: Callable[[str], int], limit: int, minimum: int, what: str):
    """(prompt, answers, tokens) of build(n) for the largest n >= minimum whose prompt has at most `limit` tokens.

    Assumes the prompt grows with n. Guesses n from the tokens per unit, then brackets and bisects.
    """

    def measured(units: int):
        prompt, answers = build(units)
        return prompt, answers, count(prompt)

    best = measured(minimum)
    if best[2] > limit:
        raise ValueError(
            f"{what}: {limit} tokens cannot hold even the smallest prompt ({best[2]} tokens); ask for a longer context"
        )
    per_unit = max((measured(minimum + 8)[2] - best[2]) / 8, 1e-3)
    guess = minimum + int((limit - best[2]) / per_unit)
    low, high = minimum, None  # build(low) fits, build(high) does not
    probe, step = max(guess, minimum + 1), max(1, guess // 64)
    while high is None or high - low > 1:
        result = measured(probe)
        if result[2] <= limit:
            low, best = probe, result
        else:
            high = probe
        if high is None:
            probe, step = low + step, 2 * step
        elif low == minimum and probe == high and high - step > low:  # the guess was too long: step down
            probe, step = high - step, 2 * step
        else:
            probe = (low + high) // 2
    return best


def _generate(name: str, tokenizer, length: int, num_samples: int, seed: int, max_new_tokens: int,
              instance: Callable[[random.Random], tuple[Build, int]]) -> list[dict]:
    """Samples of one task: instance(rng) draws a sample's needles and returns (build, minimum haystack units)."""
    samples = []
    for index in range(num_samples):
        build, minimum = instance(random.Random(f"{seed}:{name}:{index}"))
        prompt, answers, tokens = fit_to_length(
            build, functools.partial(count_tokens, tokenizer), length - max_new_tokens, minimum, name
        )
        samples.append({"index": index, "input": prompt, "outputs": answers, "length": tokens + max_new_tokens})
    return samples


# ---- needle in a haystack ----------------------------------------------------------------------------------


def niah(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False, data_dir: str | None = None,
         name: str = "niah", haystack: str = "essay", key_type: str = "words", value_type: str = "numbers",
         num_keys: int = 1, num_values: int = 1, num_queries: int = 1) -> list[dict]:
    """Needles "One of the special magic {values} for {key} is: {value}." hidden in a haystack.

    haystack: "noise" (paragraphs), "essay" (sentences, needles at RULER's depths) or "needle" (distractor
    needles with other keys). The prompt asks for the values of `num_queries` of the `num_keys` keys; the
    answers are all `num_values` values of each queried key.
    """
    num_keys = max(num_keys, num_queries)
    singular = num_queries * num_values == 1
    kind = value_type[:-1] if singular else value_type
    template, prefix = (NIAH_TEMPLATE_ONE, NIAH_PREFIX_ONE) if singular else (NIAH_TEMPLATE, NIAH_PREFIX)

    def instance(rng: random.Random) -> tuple[Build, int]:
        keys = _distinct(lambda: random_value(key_type, rng), num_keys)
        values = [_distinct(lambda: random_value(value_type, rng), num_values) for _ in keys]
        needles = [
            NEEDLE.format(kind=value_type, key=key, value=value)
            for key, row in zip(keys, values, strict=True)
            for value in row
        ]
        rng.shuffle(needles)
        queried = rng.sample(range(num_keys), num_queries)
        answers = [value for index in queried for value in values[index]]
        query = keys[queried[0]]
        if num_queries > 1:
            query = ", ".join(keys[i] for i in queried[:-1]) + ", and " + keys[queried[-1]]
        if haystack == "essay":
            fractions = [depth / 100 for depth in rng.sample(DEPTHS, len(needles))]
        else:
            fractions = [rng.random() for _ in needles]
        haystack_seed = rng.random()

        def build(units: int) -> tuple[str, list[str]]:
            if haystack == "essay":
                context = " ".join(insert_at_fractions(essay_haystack(units), needles, fractions))
            else:
                if haystack == "noise":
                    filler = noise_haystack(units)
                else:
                    distractor_rng = random.Random(haystack_seed)
                    distractor_keys = _distinct(lambda: random_value(key_type, distractor_rng), units, set(keys))
                    filler = [
                        NEEDLE.format(kind=value_type, key=key, value=random_value(value_type, distractor_rng))
                        for key in distractor_keys
                    ]
                context = "\n".join(insert_at_fractions(filler, needles, fractions))
            text = template.format(kind=kind, context=context, query=query)
            return format_prompt(tokenizer, text, prefix.format(kind=kind, query=query), chat), answers

        return build, 1

    if haystack not in ("noise", "essay", "needle"):
        raise ValueError(f"unknown haystack {haystack!r}; expected noise, essay or needle")
    return _generate(name, tokenizer, length, num_samples, seed, TOKENS_TO_GENERATE["niah"], instance)


# ---- variable tracking -------------------------------------------------------------------------------------


def _variable_chains(rng: random.Random, num_chains: int, num_hops: int):
    """(names per chain, statements per chain): "VAR A = 12345", "VAR B = VAR A", ... for each chain."""
    names = _distinct(lambda: "".join(rng.choices(string.ascii_uppercase, k=5)), num_chains * (num_hops + 1))
    chains = [names[start : start + num_hops + 1] for start in range(0, len(names), num_hops + 1)]
    statements = []
    for chain in chains:
        lines = [f"VAR {chain[0]} = {rng.randint(10000, 99999)}"]
        lines += [f"VAR {chain[hop + 1]} = VAR {chain[hop]}" for hop in range(num_hops)]
        statements.append(lines)
    return chains, statements


def _variable_tracking_question(rng: random.Random, num_chains: int, num_hops: int, haystack: str):
    """(question, answers) of one variable-tracking instance: question(units) -> (task text, answer prefix)."""
    chains, statements = _variable_chains(rng, num_chains, num_hops)
    value = statements[0][0].split("= ")[-1]
    items = [line for chain in statements for line in chain]
    fractions = [fraction for chain in statements for fraction in sorted(rng.random() for _ in chain)]

    def question(units: int) -> tuple[str, str]:
        if haystack == "essay":
            context = " ".join(insert_at_fractions(essay_haystack(units), [line + "." for line in items], fractions))
        else:
            context = "\n".join(insert_at_fractions(noise_haystack(units), items, fractions))
        return VT_TEMPLATE.format(context=context, query=value), VT_PREFIX.format(count=num_hops + 1, query=value)

    return question, chains[0]


def variable_tracking(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False,
                      data_dir: str | None = None, name: str = "vt", num_chains: int = 1, num_hops: int = 4,
                      haystack: str = "noise") -> list[dict]:
    """Chains of assignments "VAR B = VAR A" hidden in noise; the answer is every variable of the first chain.

    As in RULER, the prompt opens with one solved example of the task (about 500 tokens; here at most a quarter
    of the context, unless even the smallest example is longer).
    """
    count = functools.partial(count_tokens, tokenizer)

    def instance(rng: random.Random) -> tuple[Build, int]:
        example_question, example_answers = _variable_tracking_question(rng, num_chains, num_hops, haystack)

        def example_build(units: int) -> tuple[str, list[str]]:
            text, prefix = example_question(units)
            return text + prefix + " ".join(example_answers) + "\n", example_answers

        example_limit = max(min(VT_EXAMPLE_TOKENS, length // 4), count(example_build(1)[0]))
        example = fit_to_length(example_build, count, example_limit, 1, f"{name} example")[0]
        question, answers = _variable_tracking_question(rng, num_chains, num_hops, haystack)

        def build(units: int) -> tuple[str, list[str]]:
            text, prefix = question(units)
            return format_prompt(tokenizer, example + text, prefix, chat), answers

        return build, 1

    return _generate(name, tokenizer, length, num_samples, seed, TOKENS_TO_GENERATE["variable_tracking"], instance)


# ---- common and frequent words -----------------------------------------------------------------------------


def _numbered(words: list[str]) -> str:
    return " ".join(f"{index + 1}. {word}" for index, word in enumerate(words))


def common_words(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False,
                 data_dir: str | None = None, name: str = "cwe", freq_common: int = 30, freq_uncommon: int = 3,
                 num_common: int = 10) -> list[dict]:
    """A numbered word list where `num_common` words repeat `freq_common` times and the rest `freq_uncommon`
    times; the answers are the common words. One solved example comes first (RULER's few-shot)."""
    if length < CWE_FEW_SHOT_BELOW:
        example_shape, freq_common, freq_uncommon = (20, 3, 1), 6, 1
    else:
        example_shape = (40, 10, 3)
    template_words = {"count": num_common}

    def word_sequence(pool: list[str], words: int, common_repeats: int, uncommon_repeats: int, shuffle_seed: str):
        chosen = pool[:words]
        sequence = chosen[:num_common] * common_repeats + chosen[num_common:] * uncommon_repeats
        random.Random(shuffle_seed).shuffle(sequence)
        return sequence, chosen[:num_common]

    def instance(rng: random.Random) -> tuple[Build, int]:
        pool = word_list(rng.random())
        synthetic_seed = rng.random()
        example_sequence, example_answers = word_sequence(word_list(rng.random()), *example_shape, str(rng.random()))
        example = (
            CWE_TEMPLATE.format(context=_numbered(example_sequence), **template_words)
            + CWE_PREFIX.format(**template_words) + " " + _numbered(example_answers)
        )
        shuffle_seed = rng.random()

        def build(words: int) -> tuple[str, list[str]]:
            extra = words - len(pool)
            full_pool = pool + (synthetic_words(extra, random.Random(synthetic_seed), set(pool)) if extra > 0 else [])
            sequence, answers = word_sequence(full_pool, words, freq_common, freq_uncommon, f"{shuffle_seed}:{words}")
            text = example + "\n" + CWE_TEMPLATE.format(context=_numbered(sequence), **template_words)
            return format_prompt(tokenizer, text, CWE_PREFIX.format(**template_words), chat), answers

        return build, num_common + 1

    return _generate(name, tokenizer, length, num_samples, seed, TOKENS_TO_GENERATE["common_words"], instance)


def _zeta(alpha: float, terms: int = 1000) -> float:
    """Riemann zeta(alpha) for alpha > 1 (partial sum plus the Euler-Maclaurin tail)."""
    partial = sum(k**-alpha for k in range(1, terms))
    return partial + terms ** (1 - alpha) / (alpha - 1) + 0.5 * terms**-alpha


def frequent_words(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False,
                   data_dir: str | None = None, name: str = "fwe", alpha: float = 2.0, coded_word_length: int = 6,
                   vocab_size: int | None = None) -> list[dict]:
    """Coded words (random letters) drawn with Zipf(alpha) frequencies; the most frequent one is '...' (noise)
    and the answers are the next three. The vocabulary has (context / 50) words, as in RULER."""
    max_new_tokens = TOKENS_TO_GENERATE["frequent_words"]
    vocab_size = vocab_size or max(8, (length - max_new_tokens) // 50)
    zeta = _zeta(alpha)

    def instance(rng: random.Random) -> tuple[Build, int]:
        def coded_word() -> str:
            return "".join(rng.choices(string.ascii_lowercase, k=coded_word_length))

        vocab = ["...", *_distinct(coded_word, vocab_size - 1)]
        shuffle_seed = rng.random()

        def build(words: int) -> tuple[str, list[str]]:
            counts = [int(words * rank**-alpha / zeta) for rank in range(1, vocab_size + 1)]
            sequence = [word for word, count in zip(vocab, counts, strict=True) for _ in range(count)]
            random.Random(f"{shuffle_seed}:{words}").shuffle(sequence)
            text = FWE_TEMPLATE.format(context=" ".join(sequence))
            return format_prompt(tokenizer, text, FWE_PREFIX, chat), vocab[1:4]

        # From 100 words on, ranks 2-5 have strictly decreasing counts, so the answer is unambiguous.
        return build, 100

    return _generate(name, tokenizer, length, num_samples, seed, max_new_tokens, instance)


# ---- question answering over real documents ----------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_qa(dataset: str, data_dir: str | None) -> tuple[list[dict], list[str]]:
    """(questions, documents) of SQuAD v2 dev ("squad") or HotpotQA dev distractor ("hotpotqa").

    Each question: {query, outputs, context (gold document ids), more_context (same-article documents)}.
    Reads RULER's file (`squad.json`, `hotpotqa.json`) from data_dir when given, else the `datasets` copy.
    Raises TaskUnavailable when neither can be read.
    """
    if data_dir is not None:
        path = Path(data_dir) / f"{dataset}.json"
        if not path.is_file():
            raise TaskUnavailable(
                f"RULER {dataset} data not found: {path} does not exist (RULER's download_qa_dataset.sh writes it: "
                "SQuAD v2.0 dev-v2.0.json as squad.json, hotpot_dev_distractor_v1.json as hotpotqa.json)"
            )
        raw = json.loads(path.read_text())
        articles = _squad_articles_from_json(raw) if dataset == "squad" else _hotpot_rows_from_json(raw)
    else:
        articles = _from_datasets(dataset)
    return _squad_questions(articles) if dataset == "squad" else _hotpot_questions(articles)


def _squad_articles_from_json(raw: dict) -> list[list[tuple[str, list[tuple[str, list[str]]]]]]:
    """SQuAD JSON -> articles, each a list of (paragraph, [(question, answers)]), unanswerable ones dropped."""
    return [
        [
            (paragraph["context"], [(qa["question"], [a["text"] for a in qa["answers"]])
                                    for qa in paragraph["qas"] if not qa.get("is_impossible") and qa["answers"]])
            for paragraph in article["paragraphs"]
        ]
        for article in raw["data"]
    ]


def _hotpot_rows_from_json(raw: list) -> list[tuple[str, str, list[str]]]:
    """HotpotQA JSON -> (question, answer, documents)."""
    return [(row["question"], row["answer"], _hotpot_documents(row["context"])) for row in raw]


def _hotpot_documents(titled_sentences) -> list[str]:
    """[(title, sentences)] -> documents "title\\nsentences joined", as RULER builds them."""
    return [f"{title}\n{''.join(sentences)}" for title, sentences in titled_sentences]


def _from_datasets(dataset: str):
    try:
        from datasets import load_dataset

        if dataset == "squad":
            rows = load_dataset("rajpurkar/squad_v2", split="validation")
            articles: dict[str, dict[str, list]] = {}
            for row in rows:
                if row["answers"]["text"]:
                    paragraphs = articles.setdefault(row["title"], {})
                    paragraphs.setdefault(row["context"], []).append((row["question"], list(row["answers"]["text"])))
                else:
                    articles.setdefault(row["title"], {}).setdefault(row["context"], [])
            return [list(paragraphs.items()) for paragraphs in articles.values()]
        rows = load_dataset("hotpotqa/hotpot_qa", "distractor", split="validation")
        return [
            (row["question"], row["answer"],
             _hotpot_documents(zip(row["context"]["title"], row["context"]["sentences"], strict=True)))
            for row in rows
        ]
    except Exception as error:  # missing package, no network, dataset moved: all mean "not available here"
        raise TaskUnavailable(
            f"RULER {dataset} data could not be loaded through `datasets` ({type(error).__name__}: {error}); "
            f"put RULER's {dataset}.json in a directory and pass it as the RULER data directory"
        ) from error


def _squad_questions(articles) -> tuple[list[dict], list[str]]:
    documents = sorted({paragraph for article in articles for paragraph, _ in article})
    document_id = {document: index for index, document in enumerate(documents)}
    questions = []
    for article in articles:
        article_ids = [document_id[paragraph] for paragraph, _ in article]
        for paragraph, qas in article:
            for query, outputs in qas:
                gold = document_id[paragraph]
                more = [index for index in article_ids if index != gold]
                questions.append({"query": query, "outputs": outputs, "context": [gold], "more_context": more})
    return questions, documents


def _hotpot_questions(rows) -> tuple[list[dict], list[str]]:
    documents = sorted({document for _, _, row_documents in rows for document in row_documents})
    document_id = {document: index for index, document in enumerate(documents)}
    questions = [
        {"query": query, "outputs": [answer], "context": [document_id[d] for d in row_documents], "more_context": []}
        for query, answer, row_documents in rows
    ]
    return questions, documents


def qa(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False, data_dir: str | None = None,
       name: str = "qa", dataset: str = "squad") -> list[dict]:
    """A real question with its gold documents among distractor documents (same article first, then others)."""
    questions, documents = load_qa(dataset, data_dir)
    order = random.Random(f"{seed}:{name}").sample(range(len(questions)), min(num_samples, len(questions)))
    next_question = iter(order).__next__  # _generate calls instance() once per sample, in order

    def instance(rng: random.Random) -> tuple[Build, int]:
        record = questions[next_question()]
        gold, more = record["context"], record["more_context"]
        shuffle_seed = rng.random()

        def build(count: int) -> tuple[str, list[str]]:
            pick_rng = random.Random(f"{shuffle_seed}:{count}")
            if count >= len(documents):
                chosen = [documents[index % len(documents)] for index in range(count)]
            elif count - len(gold) > len(more):
                others = [index for index in range(len(documents)) if index not in set(gold) | set(more)]
                chosen = [documents[i] for i in gold + more + pick_rng.sample(others, count - len(gold) - len(more))]
            else:
                chosen = [documents[i] for i in gold + pick_rng.sample(more, count - len(gold))]
            pick_rng.shuffle(chosen)
            context = "\n\n".join(QA_DOCUMENT.format(index=i + 1, document=d) for i, d in enumerate(chosen))
            text = QA_TEMPLATE.format(context=context, query=record["query"])
            return format_prompt(tokenizer, text, QA_PREFIX, chat), record["outputs"]

        return build, len(gold)

    return _generate(name, tokenizer, length, len(order), seed, TOKENS_TO_GENERATE["qa"], instance)


# ---- the task registry -------------------------------------------------------------------------------------


def _score_all(prediction: str, sample: dict) -> float:
    return string_match_all(ruler_postprocess(prediction), sample["outputs"])


def _score_part(prediction: str, sample: dict) -> float:
    return string_match_part(ruler_postprocess(prediction), sample["outputs"])


def _task(name: str, generator, kind: str, score=_score_all, **options) -> Task:
    return Task(name, "ruler", TOKENS_TO_GENERATE[kind], functools.partial(generator, name=name, **options), score)


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _task("niah_single_1", niah, "niah", haystack="noise", key_type="words", value_type="numbers"),
        _task("niah_single_2", niah, "niah", haystack="essay", key_type="words", value_type="numbers"),
        _task("niah_single_3", niah, "niah", haystack="essay", key_type="words", value_type="uuids"),
        _task("niah_multikey_1", niah, "niah", haystack="essay", key_type="words", value_type="numbers", num_keys=4),
        _task("niah_multikey_2", niah, "niah", haystack="needle", key_type="words", value_type="numbers"),
        _task("niah_multikey_3", niah, "niah", haystack="needle", key_type="uuids", value_type="uuids"),
        _task("niah_multivalue", niah, "niah", haystack="essay", key_type="words", value_type="numbers", num_values=4),
        _task("niah_multiquery", niah, "niah", haystack="essay", key_type="words", value_type="numbers", num_queries=4),
        _task("vt", variable_tracking, "variable_tracking", num_chains=1, num_hops=4),
        _task("cwe", common_words, "common_words", freq_common=30, freq_uncommon=3, num_common=10),
        _task("fwe", frequent_words, "frequent_words", alpha=2.0),
        _task("qa_1", qa, "qa", _score_part, dataset="squad"),
        _task("qa_2", qa, "qa", _score_part, dataset="hotpotqa"),
    )
}
