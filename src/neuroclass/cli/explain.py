"""`neuroclass explain`: one prediction of a run, step by step, as an HTML page and a few lines."""
from __future__ import annotations

import argparse

from neuroclass.cli.common import add_common


def add_parsers(sub) -> None:
    p = sub.add_parser("explain", help="one prediction step by step: the input, dense layers, probabilities, "
                                       "loss and gradient, feature maps, attribution maps (an HTML page)")
    p.add_argument("run", metavar="RUN", help="run folder of a neural family")
    p.add_argument("file", metavar="FILE", nargs="?",
                   help="an image file, or a CSV/Parquet table whose row --row is explained (default: --index 0)")
    p.add_argument("--index", type=int, metavar="I", help="explain example I of the run's test split (with its label)")
    p.add_argument("--row", type=int, metavar="N",
                   help="with a table FILE: explain its data row N, counted from 0 (default 0)")
    p.add_argument("--label", metavar="CLASS", help="the true class of FILE: adds the loss, its gradient and one update")
    p.add_argument("--attribution", default="integrated_gradients", metavar="METHOD",
                   help="map over the input: integrated_gradients (default) or saliency; conv networks "
                        "get Grad-CAM besides")
    p.add_argument("--out", help="HTML file or folder (default: the run folder, explain-<input>.html; "
                                 "the numbers go beside it as JSON; an existing file is replaced)")
    add_common(p)


def cmd_explain(args: argparse.Namespace) -> int:
    from neuroclass.evaluation.explain import explain_run, summary_lines, write_explanation

    found = explain_run(args.run, args.file, args.index, args.label, args.attribution, row=args.row)
    write_explanation(found, args.out)
    print("\n".join(summary_lines(found)))
    return 0


COMMANDS = {"explain": cmd_explain}
