"""Commands that take a finished run folder: evaluate, predict, report, embed. An ensemble folder
(`neuroclass ensemble`, `train --cv`) is taken like a run by all but embed."""
from __future__ import annotations

import argparse
import json
import sys

from neuroclass.cli.common import add_common, report_after
from neuroclass.errors import NeuroclassError


def add_parsers(sub) -> None:
    """Commands that take a finished run folder: evaluate, predict, report, embed."""
    p = sub.add_parser("evaluate", help="metrics of a run on its test split or on other data")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--data", help="evaluate on this data instead of the run's test split")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html (report-<data>.html with --data) into the run folder")
    add_common(p)

    p = sub.add_parser("predict", help="predict the class of image files or CSV rows")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("files", metavar="FILE", nargs="+", help="PNG/JPEG images, or a CSV/Parquet of rows")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--abstain-below", type=float, metavar="P",
                   help="answer 'not sure' when the top probability is below P (see the report's "
                        "abstention section)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    add_common(p)

    p = sub.add_parser("report", help="write the run's report: one self-contained HTML page + report.json")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--data", help="evaluate on this data instead of the run's test split "
                   "(default file name report-<data>.html)")
    p.add_argument("--out", help="HTML file or folder to write to (default: the run folder; "
                   "report.json goes beside it)")
    add_common(p)

    p = sub.add_parser("embed", help="features from the layer before the head, saved as .npz")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("data", metavar="DATA", nargs="?", help="data to embed (default: the run's data)")
    p.add_argument("--out", required=True, help="output .npz (features, labels, classes)")
    add_common(p)



def cmd_report(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.report import write_report

    print(f"report: {write_report(args.run, args.data, args.out)}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.embed import embed_run, save_embedding

    emb = embed_run(args.run, args.data)
    path = save_embedding(args.out, emb)
    print(f"features {emb.features.shape[0]} x {emb.features.shape[1]} of {emb.source} -> {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.evaluate import evaluate_run
    from neuroclass.evaluation.metrics import format_metrics

    metrics, what = evaluate_run(args.run, args.data)
    if args.json:
        print(json.dumps({"data": what, **metrics}))
    else:
        print(f"evaluated on {what}")
        print(format_metrics(metrics))
    if not args.no_report:
        report_after(args.run, args.data, sys.stderr if args.json else sys.stdout)  # stdout stays JSON
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from neuroclass.inference import format_predictions, load_predictor

    if args.top_k < 1:
        raise NeuroclassError(f"--top-k must be >= 1. Got {args.top_k} instead.")
    preds = load_predictor(args.run).predict_files(args.files, top_k=args.top_k,
                                                   abstain_below=args.abstain_below)
    if args.json:
        for p in preds:
            print(json.dumps(p.as_dict(), ensure_ascii=False))
    else:
        print(format_predictions(preds))
    return 0


COMMANDS = {"evaluate": cmd_evaluate, "predict": cmd_predict, "report": cmd_report, "embed": cmd_embed}
