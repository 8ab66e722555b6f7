"""LongBench (Bai et al. 2023, THUDM/LongBench v1): the English and code tasks.

Prompt templates (`dataset2prompt.json`), generation lengths (`dataset2maxlen.json`), metrics (`eval.py`) and
middle truncation follow the official repository. The Chinese tasks (multifieldqa_zh, dureader, vcsum, lsht,
passage_retrieval_zh) are left out: their metrics need a Chinese word segmenter.

Data, in order: a local directory of the official JSONL files (`{name}.jsonl`, or `data/{name}.jsonl` as the
official data.zip unpacks), else `datasets.load_dataset("THUDM/LongBench", name)` (which needs datasets < 4, as
the hub copy is a loading script), else the official data.zip fetched with huggingface_hub.

Truncation: a prompt longer than the context length minus the task's generation length (minus the tokens the
chat template adds) keeps its first and last halves of tokens, as the official `pred.py` does.
"""

from __future__ import annotations

import functools
import io
import json
import random
import zipfile
from pathlib import Path

from asynctls_hf.eval import metrics
from asynctls_hf.eval.tasks import Task, TaskUnavailable, count_tokens, format_prompt

HUB_REPOSITORY = "THUDM/LongBench"

PROMPTS = {
    "narrativeqa": (
        "You are given a story, which can be either a novel or a movie script, and a question. Answer the question "
        "as concisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: "
        "{context}\n\nNow, answer the question based on the story as concisely as you can, using a single phrase if "
        "possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:"
    ),
    "qasper": (
        "You are given a scientific article and a question. Answer the question as concisely as you can, using a "
        "single phrase or sentence if possible. If the question cannot be answered based on the information in the "
        "article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or "
        "\"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on "
        "the above article as concisely as you can, using a single phrase or sentence if possible. If the question "
        "cannot be answered based on the information in the article, write \"unanswerable\". If the question is a "
        "yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\n"
        "Question: {input}\n\nAnswer:"
    ),
    "multifieldqa_en": (
        "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on "
        "the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:"
    ),
    "hotpotqa": (
        "Answer the question based on the given passages. Only give me the answer and do not output any other "
        "words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given "
        "passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:"
    ),
    "gov_report": (
        "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n"
        "{context}\n\nNow, write a one-page summary of the report.\n\nSummary:"
    ),
    "qmsum": (
        "You are given a meeting transcript and a query containing a question or instruction. Answer the query in "
        "one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting "
        "transcript in one or more sentences.\n\nQuery: {input}\nAnswer:"
    ),
    "multi_news": (
        "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\n"
        "Now, write a one-page summary of all the news.\n\nSummary:"
    ),
    "trec": (
        "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}"
    ),
    "triviaqa": (
        "Answer the question based on the given passage. Only give me the answer and do not output any other words. "
        "The following are some examples.\n\n{context}\n\n{input}"
    ),
    "samsum": (
        "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}"
    ),
    "passage_count": (
        "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully "
        "read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In "
        "other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final "
        "count of unique paragraphs after removing duplicates. The output format should only contain the number, "
        "such as 1, 2, 3, and so on.\n\nThe final answer is: "
    ),
    "passage_retrieval_en": (
        "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the "
        "abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of "
        "the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", "
        "etc.\n\nThe answer is: "
    ),
    "lcc": "Please complete the code given below. \n{context}Next line of code:\n",
    "repobench-p": "Please complete the code given below. \n{context}{input}Next line of code:\n",
}
PROMPTS["2wikimqa"] = PROMPTS["musique"] = PROMPTS["hotpotqa"]

MAX_NEW_TOKENS = {
    "narrativeqa": 128, "qasper": 128, "multifieldqa_en": 64, "hotpotqa": 32, "2wikimqa": 32, "musique": 32,
    "gov_report": 512, "qmsum": 512, "multi_news": 512, "trec": 64, "triviaqa": 32, "samsum": 128,
    "passage_count": 32, "passage_retrieval_en": 32, "lcc": 64, "repobench-p": 64,
}  # fmt: skip

METRICS = {
    "narrativeqa": metrics.qa_f1_score, "qasper": metrics.qa_f1_score, "multifieldqa_en": metrics.qa_f1_score,
    "hotpotqa": metrics.qa_f1_score, "2wikimqa": metrics.qa_f1_score, "musique": metrics.qa_f1_score,
    "gov_report": metrics.rouge_l_score, "qmsum": metrics.rouge_l_score, "multi_news": metrics.rouge_l_score,
    "trec": metrics.classification_score, "triviaqa": metrics.qa_f1_score, "samsum": metrics.rouge_l_score,
    "passage_count": metrics.count_score, "passage_retrieval_en": metrics.retrieval_score,
    "lcc": metrics.code_sim_score, "repobench-p": metrics.code_sim_score,
}  # fmt: skip

# Few-shot and code tasks: the official harness neither wraps them in a chat template nor scores past line one
# (the code tasks' scorer picks its own line).
NO_CHAT = {"trec", "triviaqa", "samsum", "lcc", "repobench-p"}
FIRST_LINE_ONLY = {"trec", "triviaqa", "samsum"}


def truncate_middle(tokenizer, text: str, max_tokens: int) -> str:
    """`text` unchanged when it has at most max_tokens tokens, else its first and last max_tokens // 2 tokens,
    decoded back to text (the official middle truncation)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    half = max_tokens // 2
    first, last = ids[:half], ids[len(ids) - half :]
    return tokenizer.decode(first, skip_special_tokens=True) + tokenizer.decode(last, skip_special_tokens=True)


def read_jsonl(path: Path | io.TextIOBase) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines() if isinstance(path, Path) else path.read().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@functools.lru_cache(maxsize=32)
def load_rows(name: str, data_dir: str | None) -> list[dict]:
    """The test split of LongBench task `name` (raises TaskUnavailable when it cannot be found)."""
    if data_dir is not None:
        for path in (Path(data_dir) / f"{name}.jsonl", Path(data_dir) / "data" / f"{name}.jsonl"):
            if path.is_file():
                return read_jsonl(path)
        raise TaskUnavailable(
            f"LongBench {name}: no {name}.jsonl in {data_dir} (nor in its data/ folder); unpack the official "
            f"https://huggingface.co/datasets/{HUB_REPOSITORY}/resolve/main/data.zip there"
        )
    errors = []
    try:
        from datasets import load_dataset

        return [dict(row) for row in load_dataset(HUB_REPOSITORY, name, split="test")]
    except Exception as error:  # missing package, no network, or datasets >= 4 refusing the loading script
        errors.append(f"datasets: {type(error).__name__}: {error}")
    try:
        from huggingface_hub import hf_hub_download

        archive = hf_hub_download(HUB_REPOSITORY, "data.zip", repo_type="dataset")
        with zipfile.ZipFile(archive) as unpacked, unpacked.open(f"data/{name}.jsonl") as file:
            return read_jsonl(io.TextIOWrapper(file, encoding="utf-8"))
    except Exception as error:
        errors.append(f"data.zip: {type(error).__name__}: {error}")
    raise TaskUnavailable(
        f"LongBench {name} could not be loaded ({'; '.join(errors)}); download the official data.zip, unpack it and "
        "pass its folder as the LongBench directory"
    )


def make_samples(tokenizer, length: int, num_samples: int, seed: int, *, chat: bool = False,
                 data_dir: str | None = None, name: str) -> list[dict]:
    """`num_samples` rows (a seeded choice, in file order) as prompts truncated in the middle to fit `length`."""
    rows = load_rows(name, data_dir)
    chosen = sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), min(num_samples, len(rows))))
    use_chat = chat and name not in NO_CHAT
    max_new_tokens = MAX_NEW_TOKENS[name]
    room = length - max_new_tokens - count_tokens(tokenizer, format_prompt(tokenizer, "", chat=use_chat))
    samples = []
    for index in chosen:
        row = rows[index]
        text = PROMPTS[name].format(context=row["context"], input=row["input"])
        limit = room
        while True:
            prompt = format_prompt(tokenizer, truncate_middle(tokenizer, text, limit), chat=use_chat)
            overshoot = count_tokens(tokenizer, prompt) + max_new_tokens - length
            # Decoding two halves and encoding them again can merge tokens differently: trim until it fits.
            if overshoot <= 0 or limit <= 0:
                break
            limit -= overshoot
        samples.append({
            "index": index,
            "input": prompt,
            "outputs": list(row["answers"]),
            "all_classes": row.get("all_classes"),
            "length": count_tokens(tokenizer, prompt) + max_new_tokens,
        })
    return samples


def _scorer(name: str):
    def score(prediction: str, sample: dict) -> float:
        return metrics.longbench_sample_score(
            METRICS[name], prediction, sample["outputs"], sample.get("all_classes"), name in FIRST_LINE_ONLY
        )

    return score


TASKS: dict[str, Task] = {
    name: Task(name, "longbench", MAX_NEW_TOKENS[name], functools.partial(make_samples, name=name), _scorer(name),
               stop_at_newline=name == "samsum")
    for name in MAX_NEW_TOKENS
}
