# What the runs add up to: the main table (tables/main.*, default family; tables/all.*, every
# family), the run's current-results page (tables/results.md), the listening page per family,
# the W&B page of the methods compared, and the `vadusa` target (everything VADUSA builds for
# the default family, and its table).


# The default target trains, races and judges the paper's heads, MEDUSA's frozen and joint (the
# modes with races of their own, PLAN.raced_modes()); the other kinds of heads (Hydra, shared),
# their races beside MEDUSA's (bench_twins) and the tree-size races are reproduce_all's: on
# this kind of machine the default target would not fit 90 minutes with them (docs/budget.md).


def twins_races(families):
    """The races of the MEDUSA modes beside their twins (Hydra, shared) of ``families``."""
    return [PLAN.bench_twins(family, mode) for family in families
            for mode in PLAN.twins_of(family)]


def vadusa_evaluations(families, modes=None):
    """The VADUSA evaluations of ``families``: every head mode (or ``modes``) at every eval
    tau."""
    return [PLAN.eval_metrics(family, PLAN.vadusa_system(mode, tau))
            for family, mode, tau in PLAN.vadusa_evaluations(families)
            if modes is None or mode in modes]


def table_inputs(families, draft=True, beyond=True):
    """What a main table over ``families`` reads: AR, VADUSA and VADUSA-wt (their races and
    evaluations), the quality floors (each family's resynthesis of the test split and of the
    five LibriVox recordings, and HiFi-GAN's copy synthesis of the test split), with ``draft``
    the classic draft model and with ``beyond`` the tree-size races and the evaluations of
    the other kinds of heads and their races (the table shows whatever of these exists when
    it is built)."""
    inputs = [
        expand(rules.resynthesize.output, family=families, source=["test", "librivox"]),
        expand(rules.copy_synthesis.output, source="test"),
        expand(rules.evaluate_ar.output, family=families),
        expand(rules.bench_ar.output, family=families),
        expand(rules.bench_vadusa.output, family=families, mode=PLAN.raced_modes()),
        vadusa_evaluations(families, None if beyond else PLAN.raced_modes()),
    ]
    if beyond:
        inputs += [expand(rules.bench_trees.output, family=families, mode=PLAN.raced_modes()),
                   twins_races(families)]
    if draft:
        inputs += [expand(rules.bench_draft.output, family=families),
                   expand(rules.evaluate_draft.output, family=families)]
    return inputs


rule table:
    """The main table of the default family (default target): the quality floors, AR, VADUSA,
    VADUSA-wt and typical acceptance. The classic draft model's rows, the tree-size races and
    the other kinds of heads (their races and WER) are in tables/all.* (reproduce_all); this
    table shows them too when they were built before it. Then the run's current-results page
    (tables/results.md: the headline computed from the table, every table in tables/ at that
    moment, the code's commit, the date and the judge); docs/results.md is this page of the run
    of record, written with the README's headline by `vadusa table --config RESOLVED
    --markdown-doc docs/results.md --readme README.md` (after reproduce_all too, whose tables
    come after this one)."""
    input:
        table_inputs([CFG.tokens.default_family], draft=False, beyond=False),
    output:
        markdown=PLAN.table("main", "md"),
        csv=reported(PLAN.table("main", "csv"), "table_csv", "Main results",
                     CFG.tokens.default_family, "table (CSV)", "the main table"),
        html=reported(PLAN.table("main", "html"), "main_table", "Main results",
                      CFG.tokens.default_family, "table", "the main table"),
        page=PLAN.table("results", "md"),
    log:
        PLAN.log("table"),
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "(vadusa table --config {RESOLVED} --families {CFG.tokens.default_family} "
        f"--out {PLAN.tables()} && "
        "vadusa table --config {RESOLVED} --markdown-doc {output.page}) > {log} 2>&1"


rule table_all:
    """The main table over every family (target reproduce_all): tables/all.{md,csv,html}."""
    input:
        table_inputs(FAMILIES),
    output:
        markdown=PLAN.table("all", "md"),
        csv=reported(PLAN.table("all", "csv"), "table_csv", "Main results", "all families",
                     "table (CSV)", "the main table"),
        html=reported(PLAN.table("all", "html"), "main_table", "Main results",
                      "all families", "table", "the main table"),
    log:
        PLAN.log("table_all"),
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --families {FAMILIES} --name all "
        f"--out {PLAN.tables()} > {{log}} 2>&1"


LISTEN_TAU = PLAN.first_tau()


def listen_systems(wildcards):
    """The evaluation directories `vadusa listen` puts side by side (NAME=DIR)."""
    family = wildcards.family
    systems = {"resynthesis": PLAN.resynthesis(family, "test"),
               "AR": PLAN.evaluation(family, AR)}
    for mode, name in (("frozen", "VADUSA"), ("joint", "VADUSA-wt")):
        systems[f"{name} tau {LISTEN_TAU}"] = PLAN.evaluation(
            family, PLAN.vadusa_system(mode, LISTEN_TAU))
    return " ".join(f"--system '{name}={path}'" for name, path in systems.items())


rule listen:
    """A few test utterances to listen to side by side (recording, resynthesis, AR, VADUSA and
    VADUSA-wt at the first eval tau) and where decoding planned each phone."""
    input:
        expand(rules.resynthesize.output, source="test", allow_missing=True),
        rules.evaluate_ar.output,
        expand(rules.evaluate_vadusa.output, mode=["frozen", "joint"], tau=LISTEN_TAU,
               allow_missing=True),
    output:
        page=reported(PLAN.listen(name="index.html"), "listen", "Listen",
                      "{family}", "audio", "test utterances side by side"),
        figure=reported(PLAN.listen(name="alignment.png"), "listen_alignment",
                        "Listen", "{family}", "figure", "planned phones over the outputs"),
    params:
        systems=listen_systems,
        config_digest=PLAN.digest("listen"),
    log:
        PLAN.log("listen_{family}"),
    localrule: True
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "vadusa listen --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--split test --utterances {CFG.measure.listen_utterances} {params.systems} "
        f"--out {in_shell(PLAN.listen())} > {{log}} 2>&1"


def vadusa_targets(families, swept=None, beyond=True):
    """Everything VADUSA builds for ``families``: MEDUSA heads frozen and joint, their races (tau
    x heads) and evaluations, the frozen heads' calibration, the sweeps of the ``swept`` modes
    (default: every swept mode) and the listening page; with ``beyond``, the other kinds of
    heads (Hydra with measure.hydra, shared with measure.shared: their races beside MEDUSA's
    and their evaluations) and the tree-size races."""
    targets = [
        expand(rules.listen.output, family=families),
        [expand(rules.sweep.output.chosen, family=family,
                mode=swept or PLAN.swept_modes(family)) for family in families],
        expand(rules.bench_vadusa.output, family=families, mode=PLAN.raced_modes()),
        vadusa_evaluations(families, None if beyond else PLAN.raced_modes()),
        [PLAN.acceptance(family, mode, tau)
         for family, mode, tau in PLAN.calibrations(families)],
    ]
    if beyond:
        targets += [expand(rules.bench_trees.output, family=families, mode=PLAN.raced_modes()),
                    twins_races(families)]
    return targets


def family_targets(family):
    """Everything reproduce_all builds for one family (its tokens, the quality floors, AR,
    VADUSA and its races, the classic draft model, the open questions), less the tables over
    families: `snakemake reproduce_<family>` adds a family to a run, or times one alone
    (docs/budget.md)."""
    return [expand(rules.tokenize.output.stats, family=family), table_inputs([family]),
            vadusa_targets([family]), expand(rules.open_table.output, family=family)]


rule wandb_report:
    """The methods compared per family (speedup vs WER, accepted length vs tau, tree size vs
    time, the main table) as a local page, results/<exp>/wandb_report/index.html (target
    reproduce_all). With a W&B login, `vadusa wandb-report --online` also publishes a Report."""
    input:
        rules.table_all.output.csv,
        vadusa_targets(FAMILIES),
    output:
        page=PLAN.wandb_report("index.html"),
        data=PLAN.wandb_report("data.json"),
    log:
        PLAN.log("wandb_report"),
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "vadusa wandb-report --config {RESOLVED} --offline "
        f"--out {PLAN.wandb_report()} > {{log}} 2>&1"


rule vadusa:
    """The default target's VADUSA: MEDUSA's heads, the frozen ones swept; the Hydra and shared
    heads (their training, races, WER and the Hydra sweep) and the tree-size races are
    reproduce_all's (they kept the default target over 90 minutes, docs/budget.md)."""
    input:
        rules.table.output,
        vadusa_targets([CFG.tokens.default_family], swept=["frozen"], beyond=False),
