"""Compare training runs logged to MLflow: side-by-side curves (PNG), a summary table, and the plot logged back.

    python jobs/compare.py --experiment apmpo-paper-math
    python jobs/compare.py --experiment apmpo-ray-tiny --filter "tags.apmpo.algorithm = 'apmpo'" --log-artifacts
    python jobs/compare.py --runs <run_id> <run_id> --metrics reward/mean policy/entropy --out grpo_vs_apmpo.png

The store is --tracking-uri, else $MLFLOW_TRACKING_URI, else MLflow's default for the current directory.
Exit status 2 when nothing matches, with a message naming the store, experiment and filter.
"""
from __future__ import annotations

import argparse
import sys

from apmpo_ray.tracking.compare import (DEFAULT_METRICS, NoRunsError, find_runs, format_table, get_run, load_curves,
                                        log_comparison, open_store, plot_comparison, resolve_tracking_uri, summarize)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", help="MLflow experiment name (tracking.experiment of the runs)")
    parser.add_argument("--filter", default="", help="MLflow search filter, e.g. \"tags.apmpo.algorithm = 'grpo'\"")
    parser.add_argument("--runs", nargs="+", default=[], metavar="ID", help="only these run ids, in this order")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), metavar="NAME",
                        help="one subplot each (default: %(default)s)")
    parser.add_argument("--out", default="compare.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's)")
    log = parser.add_mutually_exclusive_group()
    log.add_argument("--log-to-run", metavar="ID", help="log the PNG and summary as artifacts of this run")
    log.add_argument("--log-artifacts", action="store_true",
                     help="log the PNG and summary to a new comparison run in the runs' experiment")
    args = parser.parse_args(argv)
    if not args.experiment and not args.runs:
        parser.error("give --experiment NAME and/or --runs ID ...")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        client = open_store(resolve_tracking_uri(args.tracking_uri))
        runs = find_runs(client, args.experiment, args.filter, args.runs)
        if args.log_to_run:
            get_run(client, args.log_to_run)  # fail before plotting, not after
    except NoRunsError as err:
        print(f"compare: {err}", file=sys.stderr)
        return 2
    curves = [load_curves(client, run, args.metrics) for run in runs]
    png = plot_comparison(curves, args.metrics, args.out)
    table = format_table(summarize(curves))
    print(table)
    print(f"\nwrote {png.resolve()}")
    if args.log_to_run or args.log_artifacts:
        run_id = log_comparison(client, png, table, curves, run_id=args.log_to_run,
                                experiment_id=curves[0].experiment_id)
        print(f"logged {png.name} to run {run_id} (artifacts under comparison/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
