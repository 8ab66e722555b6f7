"""Can a tiny probe of each architecture learn retrieval by key at all? A synthetic associative-recall task small
enough to train on the development CPU (EVAL.md, "Why the GLM probe does not find the asked key").

Each sequence is `length` tokens of filler words with `needles` needles "for K is V" (a key of `key_words` words,
one value word, all drawn from the probe vocabulary; with `--bare`, pairs "K V") and then `queries` questions,
distinct needles restated in turn, whose last token, the asked key's value, is the target. Only the questions'
values are trained and scored: picking the value needs the key matched, the skill the GLM probe lacks. Models
are built as the probes are (`probes.train.model_config`), tiny, from scratch.

    python recall.py ARCH [--dense] [--q-lora-rank R] [--nope-dim D] [--no-qk-norm] [--lr 2e-3] [--steps 1500]
        [--key-words 2] [--bare] [--length 256] [--needles 8] [--queries 4] ...

prints every 50 steps the questions' accuracy, the share of answers that are another needle's value, and the
accuracy of each question by its place among the sequence's questions (first, second, ...).
"""

import argparse
import random
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from asynctls_hf.probes.tokenizer import build_word_tokenizer
from asynctls_hf.probes.train import TrainSettings, model_config


def batch(rng: random.Random, size: int, length: int, needles: int, queries: int, key_words: int, vocab: list[int],
          marks: tuple[int, ...]):
    """input_ids [size, length], target positions (row, t: predicted from t - 1) and the other needles' values
    [size * queries, needles - 1]. `marks`: the ids of "for" and "is" around each key, or none (bare pairs "K V")."""
    opening, closing = ([marks[0]], [marks[1]]) if marks else ([], [])
    ids, rows, columns, others = [], [], [], []
    for row in range(size):
        words = rng.sample(vocab, needles * (key_words + 1))
        keys = [tuple(words[i * key_words:(i + 1) * key_words]) for i in range(needles)]
        values = words[needles * key_words:]
        needle_tokens = [[*opening, *key, *closing, value] for key, value in zip(keys, values, strict=True)]
        asked = rng.sample(range(needles), queries)
        question_tokens = [[*opening, *keys[i], *closing, values[i]] for i in asked]
        filler = length - sum(map(len, needle_tokens)) - sum(map(len, question_tokens))
        body = [rng.choice(vocab) for _ in range(filler)]
        places = sorted(rng.sample(range(filler + 1), needles))
        sequence = []
        for place, needle, previous in zip(places, needle_tokens, [0, *places[:-1]], strict=True):
            sequence += body[previous:place] + needle
        sequence += body[places[-1]:]
        for i, question in zip(asked, question_tokens, strict=True):
            sequence += question
            rows.append(row)
            columns.append(len(sequence) - 1)
            others.append([v for j, v in enumerate(values) if j != i])
        ids.append(sequence)
    return torch.tensor(ids), torch.tensor(rows), torch.tensor(columns), torch.tensor(others)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arch", choices=["qwen3", "glm4_moe_lite"])
    parser.add_argument("--dense", action="store_true", help="glm4_moe_lite: every MLP dense (no experts)")
    parser.add_argument("--q-lora-rank", type=int, default=None,
                        help="glm4_moe_lite: queries through a normalized low-rank latent, as GLM-4.7-Flash's")
    parser.add_argument("--nope-dim", type=int, default=None,
                        help="glm4_moe_lite: the unroped query/key width per head (the probe's: its roped width)")
    parser.add_argument("--no-qk-norm", action="store_true",
                        help="qwen3: without its query and key norms (MLA has none on its queries)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--key-words", type=int, default=2)
    parser.add_argument("--bare", action="store_true", help='pairs "K V" without "for" and "is" (classic recall)')
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--needles", type=int, default=8)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tokenizer = build_word_tokenizer()
    vocab = [i for token, i in tokenizer.get_vocab().items() if token.isalpha() and len(token) > 2]
    marks = () if args.bare else (tokenizer.convert_tokens_to_ids("for"), tokenizer.convert_tokens_to_ids("is"))
    settings = TrainSettings(arch=args.arch, hidden_size=args.hidden, num_layers=args.layers, num_heads=4,
                             num_kv_heads=2, head_dim=32)
    config = model_config(settings, tokenizer)
    if args.dense:
        config.mlp_layer_types = ["dense"] * args.layers
    if args.q_lora_rank:
        config.q_lora_rank = args.q_lora_rank
    if args.nope_dim:
        config.qk_nope_head_dim = args.nope_dim
        config.qk_head_dim = args.nope_dim + config.qk_rope_head_dim
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()
    if args.no_qk_norm:
        for layer in model.model.layers:
            layer.self_attn.q_norm = layer.self_attn.k_norm = torch.nn.Identity()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    print(f"{args} vocab={len(vocab)} parameters={sum(p.numel() for p in model.parameters()) / 1e6:.2f}M", flush=True)
    hits = distractors = total = 0
    by_question = torch.zeros(args.queries)  # right answers per question number (the first asked, the second, ...)
    start = time.monotonic()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 100)
        ids, rows, columns, others = batch(rng, args.batch, args.length, args.needles, args.queries, args.key_words,
                                            vocab, marks)
        logits = model(input_ids=ids, use_cache=False).logits[rows, columns - 1]
        loss = F.cross_entropy(logits, ids[rows, columns])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        guess = logits.argmax(-1)
        right = guess == ids[rows, columns]  # rows in order: each sequence's questions in turn
        by_question += right.view(args.batch, args.queries).float().sum(0)
        hits += right.sum().item()
        distractors += (guess[:, None] == others).any(1).sum().item()
        total += len(guess)
        if step % 50 == 0:
            print(f"step={step} time_s={time.monotonic() - start:.0f} loss={loss.item():.3f} "
                  f"accuracy={hits / total:.3f} distractor={distractors / total:.3f} "
                  f"by_question={','.join(f'{a:.2f}' for a in (by_question * args.queries / total).tolist())}",
                  flush=True)
            hits = distractors = total = 0
            by_question.zero_()


if __name__ == "__main__":
    main()
