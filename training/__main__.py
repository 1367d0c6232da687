"""python -m training build | evaluate [--json]

build [--task T] [--family F] [--from-db]   train the models into DATA_DIR/models (COPILOT_DATA_DIR,
           default ./var); --from-db adds the labels people stored through /api/v1/labels
build --task retrieval [--model M]   learn the suggestions' ranking and silence weights from the writers'
           query sets into knowledge/ranking_weights.json (shipped with the code; per encoder)
simulate-week --blind DIR   one simulated week of corrections (docs/EVALUATION.md, "The learning loop")
run-job ID     run one training job of the model registry (the service starts these itself)
mine-scripts   propose best-seller replies from stored conversations as draft scripts
evaluate-retrieval   recall@1/@3 and MRR of dense, lexical and hybrid script retrieval
evaluate --blind DIR [--families]   aggregate metrics on a blind set (never prints an item)
evaluate   held-out accuracy, macro-F1 and confusion matrices for both models, SnowNLP's sentiment as a
           baseline, and precision/recall per sensitive category on training/data/sensitive_eval.tsv
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def models_dir(args) -> Path:
    return Path(args.data_dir or os.environ.get("COPILOT_DATA_DIR", "./var")) / "models"


def db_labels(args, task: str) -> list[tuple[str, str, str]]:
    """The labels table of the service's configured database (COPILOT_DATA_DIR / DATABASE_URL)."""
    import asyncio

    from bot.learning.labels import LabelStore
    from bot.settings import Settings
    from storage.sql import create_schema, open_database

    settings = Settings.from_env()
    if args.data_dir:
        settings = settings.with_overrides(data_dir=Path(args.data_dir))

    async def read():
        async with open_database(settings.database_url) as engine:
            await create_schema(engine)
            return await LabelStore(engine).for_training(task)

    return [(l.text, l.label, l.source) for l in asyncio.run(read())]


def cmd_build(args) -> int:
    from nlp.encoders import UseEncoder
    from nlp.models import model_path
    from training.trainers import DEFAULT_FAMILY, train_family, train_sensitive

    d = models_dir(args)
    if args.task == "retrieval":
        return build_retrieval(args, d)
    encoder = UseEncoder()
    for name in (args.task,) if args.task else (*DEFAULT_FAMILY, "sensitive"):
        t0 = time.perf_counter()
        extra = db_labels(args, name) if args.from_db else []
        if name == "sensitive":
            model = train_sensitive(encoder, args.family or "char", extra)
        else:
            model = train_family(name, args.family or DEFAULT_FAMILY[name], encoder, extra=extra)
        model.save(model_path(d, name))
        print(f"{name}: trained on {model.meta['n_train']} examples ({len(extra)} from the labels table) in "
              f"{time.perf_counter() - t0:.1f}s -> {model_path(d, name)}")
    return 0


def build_retrieval(args, d: Path) -> int:
    from knowledge.ranking import DEFAULT_PATH
    from training.blind import analyzer_for
    from training.retrieval_model import train_ranking

    t0 = time.perf_counter()
    ranking = train_ranking(args.model, analyzer_for(d).intent)
    out = Path(args.out) if args.out else DEFAULT_PATH
    ranking.save(out)
    print(f"retrieval: {ranking.meta['n_queries']} queries and {ranking.meta['n_chit_chat']} chit-chat lines "
          f"from {', '.join(ranking.meta['sources'])} in {time.perf_counter() - t0:.1f}s -> {out}")
    return 0


def cmd_evaluate(args) -> int:
    if args.blind:
        from training.blind import evaluate_blind, render as render_blind

        for directory in args.blind:
            report = evaluate_blind(Path(directory), models_dir(args), families=args.families,
                                    scripts_path=Path(args.scripts) if args.scripts else None,
                                    encoder_name=args.model, ranking_path=Path(args.ranking) if args.ranking else None)
            print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else render_blind(report), flush=True)
        return 0
    from training.evaluate import evaluate_all

    report = evaluate_all(models_dir(args))
    # The trainer page shows the latest evaluation (confusion matrix included).
    slim = {k: v for k, v in report.items() if not k.startswith("sensitive")}
    slim["sensitive"] = {k: v for k, v in report["sensitive"].items() if k not in ("misses", "false_alarms")}
    (models_dir(args) / "evaluation.json").write_text(json.dumps(slim, ensure_ascii=False))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        from training.evaluate import render

        print(render(report))
    return 0


def cmd_evaluate_retrieval(args) -> int:
    from training.retrieval import evaluate_retrieval, render

    report = evaluate_retrieval(args.model)
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0


def cmd_mine_scripts(args) -> int:
    """Mine best-seller replies from the service's stored conversations (its configured stores)."""
    import asyncio
    import time as _time

    from bot.settings import Settings
    from knowledge.mining import mine
    from bot.components import open_components

    settings = Settings.from_env()
    if args.data_dir:
        settings = settings.with_overrides(data_dir=Path(args.data_dir))

    async def run():
        async with open_components(settings) as parts:
            since = int((_time.time() - args.days * 86400) * 1000)
            return await mine(parts.engine, parts.knowledge, since, min_uses=args.min_uses, top=args.top)

    proposals = asyncio.run(run())
    for p in proposals:
        print(f"{p['score']:.3f}  {p['conversions']}/{p['uses']}  [{p['status']}] {p['question']} → {p['reply']}")
    print(f"{len(proposals)} draft scripts proposed (approve them in the console's trainer page)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training")
    p.add_argument("--data-dir")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--task", choices=("intent", "sentiment", "sensitive", "retrieval"))
    b.add_argument("--model", default=os.environ.get("COPILOT_EMBEDDING_MODEL", "use-multilingual"),
                   help="with --task retrieval: the encoder the weights are learned for")
    b.add_argument("--out", help="with --task retrieval: where to write the weights")
    b.add_argument("--family", choices=("char", "dense", "cascade", "mlp"))
    b.add_argument("--from-db", action="store_true",
                   help="also train on the labels in the service's database (POST /api/v1/labels)")
    ev = sub.add_parser("evaluate")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--blind", metavar="DIR", nargs="+",
                    help="blind sets: print aggregate metrics and counts only, never items")
    ev.add_argument("--families", action="store_true", help="with --blind: also train and compare every model family")
    ev.add_argument("--scripts", help="with --blind: the knowledge base its retrieval queries refer to")
    ev.add_argument("--model", default=os.environ.get("COPILOT_EMBEDDING_MODEL", "use-multilingual"),
                    help="with --blind: the encoder suggestions are measured with")
    ev.add_argument("--ranking", help="with --blind and --model: ranking weights learned for that encoder "
                                      "(python -m training build --task retrieval --model M --out FILE)")
    er = sub.add_parser("evaluate-retrieval")
    er.add_argument("--json", action="store_true")
    er.add_argument("--model", default=os.environ.get("COPILOT_EMBEDDING_MODEL", "use-multilingual"))
    ms = sub.add_parser("mine-scripts")
    ms.add_argument("--days", type=int, default=30)
    ms.add_argument("--min-uses", type=int, default=3)
    ms.add_argument("--top", type=int, default=50)
    sw = sub.add_parser("simulate-week", help="one simulated week of corrections, measured on a blind set")
    sw.add_argument("--blind", metavar="DIR", nargs="+", required=True)
    sw.add_argument("--json", action="store_true")
    rj = sub.add_parser("run-job", help="run one queued training job (POST /api/v1/models/train)")
    rj.add_argument("job_id")
    args = p.parse_args(argv)
    if args.cmd == "simulate-week":
        from training.simulate import render as render_week, simulate_week

        for directory in args.blind:
            report = simulate_week(Path(directory), models_dir(args))
            print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else render_week(report), flush=True)
        return 0
    if args.cmd == "run-job":
        from training.jobs import main as run_job

        return run_job(args.job_id)
    return {"build": cmd_build, "evaluate": cmd_evaluate, "evaluate-retrieval": cmd_evaluate_retrieval,
            "mine-scripts": cmd_mine_scripts}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
