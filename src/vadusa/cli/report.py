"""The results: ``table`` (the main table, open questions, ablation, and with
``--markdown-doc`` the current-results page), ``wandb-report`` and ``job-times`` (what each
job of a run took)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vadusa.cli.common import Subcommand, guard
from vadusa.config import Config
from vadusa.plan import Plan

Written = list[tuple[str, list[dict[str, Any]], tuple[str, ...]]]  # name, rows, columns


def table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--families", nargs="+", help="token families (default: tokens.families)")
    parser.add_argument("--out", help="output directory (default: the experiment's tables/): "
                        "main.md, .csv, .html")
    parser.add_argument("--name", default="main",
                        help="file name of the main table, without extension (default: main)")
    parser.add_argument("--open", action="store_true",
                        help="instead, the open questions of each family (target "
                        "open_questions: tau 1..4+, heads in {2, 4, 6}): open_<family>.md, "
                        ".csv, .html, .png")
    parser.add_argument("--zero-shot", action="store_true",
                        help="instead, the zero-shot table of the first family (target "
                        "reproduce_zero_shot: unseen and seen speakers, prompted): "
                        "zero_shot.md, .csv, .html")
    parser.add_argument("--ablation", action="store_true",
                        help="instead, the alignment ablation of each family (target "
                        "ablation): ablation_<family>.md, .csv, .html")
    parser.add_argument("--markdown-doc", metavar="PATH",
                        help="instead, the current-results page (e.g. docs/results.md): the "
                        "headline and every table the run has, read from --out (default: "
                        "the experiment's tables/), stamped with the git commit, the date, "
                        "the experiment and the judge; without a main table, a placeholder "
                        "naming the command that writes it")
    parser.add_argument("--readme", metavar="PATH",
                        help="with --markdown-doc: also rewrite the headline block of this "
                        "file (e.g. README.md) between <!-- results:headline --> and "
                        "<!-- /results:headline -->")


def _write_table(out: Path, name: str, rows: list[dict[str, Any]], columns: tuple[str, ...],
                 title: str) -> str:
    """``name``.md, .csv and .html in ``out``; returns the markdown."""
    from vadusa.atomic import write_text_atomic  # noqa: PLC0415
    from vadusa.eval.table import to_csv, to_html, to_markdown  # noqa: PLC0415

    markdown = to_markdown(rows, columns)
    write_text_atomic(out / f"{name}.md", markdown)
    write_text_atomic(out / f"{name}.csv", to_csv(rows, columns))
    write_text_atomic(out / f"{name}.html", to_html(rows, columns, title))
    return markdown


@guard
def cmd_table(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.eval.table import COLUMNS, filled, main_table  # noqa: PLC0415

    plan = Plan(cfg)
    if args.markdown_doc or args.readme:
        return _results_page(cfg, args, plan)
    families = args.families or list(cfg.tokens.families)
    out = Path(args.out or plan.tables())
    out.mkdir(parents=True, exist_ok=True)
    written: Written = []
    if args.ablation:
        from vadusa.eval.table import ABLATION_COLUMNS, ablation_rows  # noqa: PLC0415

        for family in families:
            configured = (f"model.alignment={cfg.model.alignment}, "
                          f"train.token_noise={cfg.train.token_noise}, "
                          f"model.dropout={cfg.model.dropout}")
            rows = ablation_rows(plan, family, configured)
            name = plan.ablation_table_name(family)
            print(_write_table(out, name, rows, ABLATION_COLUMNS,
                               f"alignment ablation: {family}"), end="")
            written.append((name, rows, ABLATION_COLUMNS))
    elif args.zero_shot:
        from vadusa.eval.table import ZERO_SHOT_COLUMNS, zero_shot_rows  # noqa: PLC0415

        rows = zero_shot_rows(plan, families[0])
        name = plan.zero_shot_table_name()
        print(_write_table(out, name, rows, ZERO_SHOT_COLUMNS,
                           f"zero-shot: {families[0]}"), end="")
        written.append((name, rows, ZERO_SHOT_COLUMNS))
    elif args.open:
        from vadusa.eval.figures import open_questions  # noqa: PLC0415
        from vadusa.eval.table import OPEN_COLUMNS, open_rows  # noqa: PLC0415

        for family in families:
            rows = open_rows(plan, family)
            name = plan.open_table_name(family)
            markdown = _write_table(out, name, rows, OPEN_COLUMNS, f"open questions: {family}")
            open_questions(rows, out / f"{name}.png",
                           f"{family}: tolerance and head count (frozen heads, "
                           f"{cfg.measure.open_utterances or 'all'} test utterances)")
            print(markdown, end="")
            written.append((name, rows, OPEN_COLUMNS))
    else:
        rows = main_table(plan, families)
        columns = filled(rows, COLUMNS)
        print(_write_table(out, args.name, rows, columns, f"{args.name} table"), end="")
        written.append((args.name, rows, columns))
    setting = ("ablation" if args.ablation else "open" if args.open
               else "zero_shot" if args.zero_shot else args.name)
    _track_tables(cfg, out, setting, families, written)
    return 0


def _results_page(cfg: Config, args: argparse.Namespace, plan: Plan) -> int:
    """``--markdown-doc``: the current-results page from the tables already written (nothing
    is rebuilt: the page shows the run as it is), and with ``--readme`` the README's
    headline."""
    from vadusa.eval.judge import judge_name  # noqa: PLC0415
    from vadusa.eval.results_page import (  # noqa: PLC0415
        ResultsPageError,
        make_stamp,
        write_results_page,
    )

    if not args.markdown_doc:
        raise ResultsPageError("--readme needs --markdown-doc: the README's headline links to "
                               "the page")
    page = Path(args.markdown_doc)
    tables = Path(args.out or plan.tables())
    # the command that writes this page again: what the placeholder tells a reader to run
    # (the run's resolved config is Snakemake's output, not one of its config files)
    configs = [c for c in args.config if Path(c) != Path(plan.config_file())]
    command = (f"snakemake --cores 2{''.join(f' --configfile {c}' for c in configs)}"
               f"  # the run; it ends in {plan.table('results', 'md')}\n"
               f"vadusa table --config {plan.config_file()}"
               + (f" --out {tables.as_posix()}" if args.out else "")
               + f" --markdown-doc {page.as_posix()}"
               + (f" --readme {args.readme}" if args.readme else ""))
    headline = write_results_page(
        tables, page, make_stamp(cfg.experiment, args.config), judge_name(cfg.judge), command,
        readme=Path(args.readme) if args.readme else None,
        family=cfg.tokens.default_family, tau=plan.first_tau())
    print(f"{page}: {headline}")
    return 0


def _track_tables(cfg: Config, out: Path, setting: str, families: list[str],
                  written: Written) -> None:
    """The tables as W&B tables (raw numbers), and their CSVs as artifacts."""
    from vadusa.tracking import artifact_name, open_tracker  # noqa: PLC0415

    # one family: a family's run; several: the experiment's, with the families as tags
    family = families[0] if len(families) == 1 else None
    with open_tracker(cfg, stage="table", out_dir=out, family=family, setting=setting,
                      tags=tuple(families)) as tracker:
        for name, rows, columns in written:
            # "" (no tau for AR...) as None: a W&B table column keeps one type
            tracker.log_table(f"tables/{name}", [*columns, "wer_low", "wer_high"],
                              [[None if r.get(c) == "" else r.get(c) for c in columns]
                               + list(r.get("wer_ci") or [None, None]) for r in rows])
            csv_path = out / f"{name}.csv"
            tracker.log_artifact(csv_path, artifact_name(cfg, csv_path), "table")


def wandb_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--families", nargs="+", help="token families (default: those of "
                        "tokens.families with results)")
    parser.add_argument("--out", help="output directory of the local page (default: the "
                        "experiment's wandb_report/): index.html, the PNGs, data.json")
    online = parser.add_mutually_exclusive_group()
    online.add_argument("--online", action="store_true", default=None,
                        help="also build a W&B Report (needs `pip install wandb-workspaces` "
                        "and `wandb login`; default: when tracking.mode or WANDB_MODE is "
                        "online)")
    online.add_argument("--offline", dest="online", action="store_false",
                        help="only the local page, whatever tracking.mode says")
    parser.set_defaults(online=None)  # neither flag: tracking.mode decides


@guard
def cmd_wandb_report(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.tracking.report import collect, online_by_default, publish, write_page  # noqa: PLC0415

    out = Path(args.out or Plan(cfg).wandb_report())
    report = collect(cfg, args.families)
    page = write_page(report, out)
    print(f"{page}: {', '.join(f.family for f in report.families) or 'no family'}"
          + (f", tables {', '.join(report.tables)}" if report.tables else ""))
    for missing in report.missing + [m for f in report.families for m in f.missing]:
        print(f"  missing: {missing}")
    if args.online if args.online is not None else online_by_default(cfg):
        print(f"W&B Report: {publish(report, cfg, out)}")
    return 0


def job_times_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=".",
                        help="where Snakemake ran (its .snakemake/ is read; default: here)")
    parser.add_argument("--under", help="only jobs whose outputs lie under this path "
                        "(default: the experiment's directory, results/<experiment>)")
    parser.add_argument("--out", help="also write the table to this markdown file")


@guard
def cmd_job_times(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.atomic import write_text_atomic  # noqa: PLC0415
    from vadusa.eval.job_times import job_table, read_jobs  # noqa: PLC0415

    under = args.under if args.under is not None else str(cfg.experiment_dir)
    table = job_table(read_jobs(args.workdir, under))
    if args.out:
        write_text_atomic(Path(args.out), table)
    print(table, end="")
    return 0


SUBCOMMANDS = {
    "table": Subcommand("the main table (markdown, CSV, HTML): family x method, WER, CER, SIM, "
                        "accepted length, speedup, RTF; --markdown-doc: the current-results "
                        "page (docs/results.md) from a run's tables", table_options, cmd_table),
    "wandb-report": Subcommand("the methods compared per token family (speedup vs WER, "
                               "accepted length vs tau, tree size vs time, the main table): a "
                               "local page, and a W&B Report when online",
                               wandb_report_options, cmd_wandb_report),
    "job-times": Subcommand("what each job of a finished Snakemake run took, from its "
                            ".snakemake/metadata records (the table docs/budget.md quotes)",
                            job_times_options, cmd_job_times),
}
